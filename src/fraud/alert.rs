//! The fraud alert of a transaction whose verdict is at or above the threshold: the
//! transaction's identity, amount and source coordinates with the score, the reasons and
//! the feature snapshot that explain it (keyed by transaction_id downstream).

use super::score::Verdict;
use crate::model::{FraudAlert, SourceCoord, Transaction};

impl Verdict {
    /// The alert for `t` (scored with this verdict), read from `source`.
    pub fn alert_for(&self, t: &Transaction, source: SourceCoord) -> FraudAlert {
        FraudAlert {
            transaction_id: t.transaction_id.clone(),
            customer_id: t.customer_id.clone(),
            timestamp: t.timestamp,
            amount: t.amount,
            currency: t.currency.clone(),
            score: self.score,
            reasons: self.reason_strings(),
            features: self.features.snapshot(),
            source,
        }
    }
}
