//! Venue rules v1: fully-collateralised, cash-settled European options (`specs/batch-air.md`).
//!
//! This module is the one definition of the rules. The native engine ([`engine`]) applies them
//! to produce the witness and to re-execute submissions at the door; the batch-validity AIR
//! constrains the same rules over the same encodings.
//!
//! Units are exact integers: cash in 10^-6 quote units; quantities in *lots* of 10^-4
//! contracts; every per-contract figure (price, strike, collateral, settlement price) is quoted
//! per lot, so every product is an exact integer.

pub mod engine;
pub mod ops;
pub mod sample;
pub mod state;

pub use engine::{Venue, Violation};
pub use ops::{instruments_root, Instrument, Operation, OptionKind, OP_LIMBS};
pub use state::{AccountState, StateKey, StateTree, STATE_DEPTH};

/// Largest amount, quantity or price: every value fits 63 bits, so sums of two never wrap a u64.
pub const MAX_AMOUNT: u64 = (1 << 63) - 1;
/// Accounts are `0 .. MAX_ACCOUNTS`; account 0 is the venue's fee account.
pub const MAX_ACCOUNTS: u32 = 1 << 18;
/// Instruments are `0 .. MAX_INSTRUMENTS` (their index in the instrument list).
pub const MAX_INSTRUMENTS: u32 = 1 << 12;
/// The account that collects fees.
pub const FEE_ACCOUNT: u32 = 0;
