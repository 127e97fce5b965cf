//! UTC days: re-exported from `poe_circle_stark::calendar`, where the day statement needs them.

pub use poe_circle_stark::calendar::*;
