//! Security configuration as a checked value (`specs/proof-format.md` §3).

use stwo::core::fri::FriConfig;
use stwo::core::pcs::PcsConfig;

/// A configuration outside the supported ranges.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A parameter outside its range.
    #[error("{name} must be in {min}..={max}, got {got}")]
    OutOfRange {
        /// Which parameter.
        name: &'static str,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
        /// Given.
        got: u32,
    },
}

/// FRI and proof-of-work parameters of a proof.
///
/// Conjectured security (the usual FRI conjecture, as stwo computes it):
/// `pow_bits + log_blowup × n_queries` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityConfig {
    log_blowup: u32,
    n_queries: u32,
    pow_bits: u32,
}

impl SecurityConfig {
    /// Ranges: `log_blowup` 1..=5, `n_queries` 1..=256, `pow_bits` 0..=30.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the parameter.
    pub fn new(log_blowup: u32, n_queries: u32, pow_bits: u32) -> Result<Self, ConfigError> {
        let check = |name, min, max, got| {
            if (min..=max).contains(&got) {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange {
                    name,
                    min,
                    max,
                    got,
                })
            }
        };
        check("log_blowup", 1, 5, log_blowup)?;
        check("n_queries", 1, 256, n_queries)?;
        check("pow_bits", 0, 30, pow_bits)?;
        Ok(Self {
            log_blowup,
            n_queries,
            pow_bits,
        })
    }

    /// 104 conjectured bits: blowup 2, 84 queries, 20 bits of grinding. What poe publishes.
    pub const fn production() -> Self {
        Self {
            log_blowup: 1,
            n_queries: 84,
            pow_bits: 20,
        }
    }

    /// 16 bits — fast, for tests only; the default verifier policy refuses it.
    pub const fn testing() -> Self {
        Self {
            log_blowup: 1,
            n_queries: 12,
            pow_bits: 4,
        }
    }

    /// 104 conjectured bits with blowup 4: 42 queries, 20 bits of grinding. Half the production
    /// preset's queries: proofs ~45% smaller and ~40% faster to verify, for ~20% more proving
    /// time and ~40% more memory (BENCHMARKS.md). What root proofs use, where the auditor's
    /// cost is what counts.
    pub const fn compact() -> Self {
        Self {
            log_blowup: 2,
            n_queries: 42,
            pow_bits: 20,
        }
    }

    /// 104 conjectured bits with blowup 16: 21 queries, 20 bits of grinding. A quarter of the
    /// production preset's queries, for four times the prover's evaluation domain: for the
    /// one proof an auditor downloads and verifies (the day tree's final node,
    /// `specs/recursion.md` §8), proven once a day.
    pub const fn final_node() -> Self {
        Self {
            log_blowup: 4,
            n_queries: 21,
            pow_bits: 20,
        }
    }

    /// A preset by name: `production`, `compact`, `final` or `testing`.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "production" => Some(Self::production()),
            "compact" => Some(Self::compact()),
            "final" => Some(Self::final_node()),
            "testing" => Some(Self::testing()),
            _ => None,
        }
    }

    /// log2 of the blowup factor.
    pub const fn log_blowup(&self) -> u32 {
        self.log_blowup
    }

    /// FRI queries.
    pub const fn n_queries(&self) -> u32 {
        self.n_queries
    }

    /// Proof-of-work bits before the queries.
    pub const fn pow_bits(&self) -> u32 {
        self.pow_bits
    }

    /// Conjectured security in bits.
    pub const fn security_bits(&self) -> u32 {
        self.pow_bits + self.log_blowup * self.n_queries
    }

    /// The stwo configuration; lifting off, last FRI layer of degree 1, fold step 1.
    pub fn pcs_config(&self) -> PcsConfig {
        PcsConfig {
            pow_bits: self.pow_bits,
            fri_config: FriConfig::new(0, self.log_blowup, self.n_queries as usize, 1),
            lifting_log_size: None,
        }
    }
}

/// What a verifier accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifierPolicy {
    /// Proofs below this many conjectured bits are refused.
    pub min_security_bits: u32,
}

impl Default for VerifierPolicy {
    /// 100 bits.
    fn default() -> Self {
        Self {
            min_security_bits: 100,
        }
    }
}

impl VerifierPolicy {
    /// Accepts any configuration: for tests that prove with [`SecurityConfig::testing`].
    pub const fn insecure_for_tests() -> Self {
        Self {
            min_security_bits: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_documented_security() {
        assert_eq!(SecurityConfig::production().security_bits(), 104);
        assert!(
            SecurityConfig::production().security_bits()
                >= VerifierPolicy::default().min_security_bits
        );
        assert_eq!(SecurityConfig::testing().security_bits(), 16);
        assert_eq!(
            SecurityConfig::production().pcs_config().security_bits(),
            104
        );
        assert_eq!(SecurityConfig::compact().security_bits(), 104);
        assert_eq!(SecurityConfig::compact().pcs_config().security_bits(), 104);
        assert_eq!(
            SecurityConfig::preset("compact"),
            Some(SecurityConfig::compact())
        );
        // The final node's preset: the same 104 bits at blowup 16, 21 queries.
        assert_eq!(SecurityConfig::final_node().security_bits(), 104);
        assert_eq!(
            SecurityConfig::final_node().pcs_config().security_bits(),
            104
        );
        assert_eq!(
            SecurityConfig::preset("final"),
            Some(SecurityConfig::final_node())
        );
    }

    #[test]
    fn out_of_range_is_named() {
        assert_eq!(
            SecurityConfig::new(0, 10, 10),
            Err(ConfigError::OutOfRange {
                name: "log_blowup",
                min: 1,
                max: 5,
                got: 0
            })
        );
        assert_eq!(
            SecurityConfig::new(6, 10, 10),
            Err(ConfigError::OutOfRange {
                name: "log_blowup",
                min: 1,
                max: 5,
                got: 6
            })
        );
        assert!(matches!(
            SecurityConfig::new(1, 0, 10),
            Err(ConfigError::OutOfRange {
                name: "n_queries",
                ..
            })
        ));
        assert!(matches!(
            SecurityConfig::new(1, 10, 31),
            Err(ConfigError::OutOfRange {
                name: "pow_bits",
                ..
            })
        ));
    }
}
