//! Validation rules, DLQ reasons and the per-window data-quality score.
