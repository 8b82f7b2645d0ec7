//! The deterministic core, no I/O: watermarks, windows, dedup, state and the per-partition
//! task. Records and watermarks in, outputs and state changes out.
