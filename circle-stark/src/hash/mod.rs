//! Hashing: the Poseidon2-M31 permutation and sponge, Merkle trees over it, and the hash chip
//! that offers permutations to other AIR components (`specs/poseidon2.md`).

pub mod channel;
pub mod chip;
pub mod merkle;
pub mod poseidon2;
