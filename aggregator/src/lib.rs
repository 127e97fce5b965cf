//! poe's aggregator: for now the synthetic batch job behind `poe prove-batch` and `poe bench`.
//! The day pipeline (leaf proofs, day close, root proof, recovery) lands here next.

pub mod batch;
pub mod rss;
