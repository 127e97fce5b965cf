//! Poseidon2-M31 round constants from the Grain LFSR of the Poseidon paper
//! (eprint 2019/458, appendix E), as used by the Poseidon2 reference and Plonky3.
//! The procedure is written out in `specs/poseidon2.md` §2.

use std::sync::OnceLock;

use super::{N_FULL_ROUNDS, N_HALF_FULL_ROUNDS, N_PARTIAL_ROUNDS, WIDTH};
use crate::field::MODULUS;

/// All round constants, as canonical `u32` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundConstants {
    /// Constants of the first four full rounds, one per state element.
    pub external_initial: [[u32; WIDTH]; N_HALF_FULL_ROUNDS],
    /// One constant per partial round (added to state element 0).
    pub internal: [u32; N_PARTIAL_ROUNDS],
    /// Constants of the last four full rounds.
    pub external_terminal: [[u32; WIDTH]; N_HALF_FULL_ROUNDS],
}

/// The constants, generated once per process (a few microseconds).
pub fn round_constants() -> &'static RoundConstants {
    static CONSTANTS: OnceLock<RoundConstants> = OnceLock::new();
    CONSTANTS.get_or_init(generate)
}

/// Grain LFSR in self-shrinking mode, seeded with the Poseidon parameters.
#[derive(Debug)]
struct Grain {
    /// 80 bits; `state[0]` is the oldest bit.
    state: [bool; 80],
    head: usize,
}

impl Grain {
    const TAPS: [usize; 6] = [0, 13, 23, 38, 51, 62];

    fn new(field_bits: u32, width: u32, full_rounds: u32, partial_rounds: u32) -> Self {
        let mut bits = Vec::with_capacity(80);
        let mut push = |value: u32, n: u32| {
            for i in (0..n).rev() {
                bits.push((value >> i) & 1 == 1);
            }
        };
        push(1, 2); // field type: GF(p)
        push(0, 4); // S-box: x^alpha
        push(field_bits, 12);
        push(width, 12);
        push(full_rounds, 10);
        push(partial_rounds, 10);
        push((1 << 30) - 1, 30);
        let mut grain = Self {
            state: bits.try_into().expect("80 seed bits"),
            head: 0,
        };
        for _ in 0..160 {
            grain.clock();
        }
        grain
    }

    /// Shifts the register once and returns the new bit. The register is a ring buffer:
    /// `head` is the position of the oldest bit.
    fn clock(&mut self) -> bool {
        let bit = Self::TAPS
            .iter()
            .fold(false, |acc, &t| acc ^ self.state[(self.head + t) % 80]);
        self.state[self.head] = bit;
        self.head = (self.head + 1) % 80;
        bit
    }

    fn next_bit(&mut self) -> bool {
        loop {
            let keep = self.clock();
            let bit = self.clock();
            if keep {
                return bit;
            }
        }
    }

    /// Rejection-samples a 31-bit big-endian integer below p.
    fn field_element(&mut self) -> u32 {
        loop {
            let value = (0..31).fold(0u32, |acc, _| (acc << 1) | u32::from(self.next_bit()));
            if value < MODULUS {
                return value;
            }
        }
    }
}

fn generate() -> RoundConstants {
    let mut grain = Grain::new(
        31,
        WIDTH as u32,
        N_FULL_ROUNDS as u32,
        N_PARTIAL_ROUNDS as u32,
    );
    let mut full = || std::array::from_fn(|_| std::array::from_fn(|_| grain.field_element()));
    let external_initial = full();
    let internal = std::array::from_fn(|_| grain.field_element());
    let external_terminal = std::array::from_fn(|_| std::array::from_fn(|_| grain.field_element()));
    RoundConstants {
        external_initial,
        internal,
        external_terminal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_canonical_and_distinct() {
        let c = round_constants();
        let mut all: Vec<u32> = c.external_initial.iter().flatten().copied().collect();
        all.extend(c.internal);
        all.extend(c.external_terminal.iter().flatten());
        assert_eq!(all.len(), 8 * 16 + 14);
        assert!(all.iter().all(|&x| x < MODULUS));
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            all.len(),
            "a repeated constant would hint at a broken LFSR"
        );
    }

    #[test]
    fn first_constant_matches_reference_generator() {
        // The first value printed by the Poseidon2 reference script for
        // `--field mersenne31 --width 16` (and Plonky3's table); the full tables are compared
        // against Plonky3 in tests/plonky3_cross_check.rs.
        assert_eq!(round_constants().external_initial[0][0], 0x768bab52);
    }
}
