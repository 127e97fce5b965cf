//! `poe keygen`: a rollup's Stark-curve key pair — the private key written to a file only its
//! owner can read, the public key and the registry entry an operator puts in `poe.toml`.

use std::io::Write;
use std::path::Path;

use starknet_crypto::Felt;

/// The order of the Stark curve's generator (`starknet_curve::curve_params::EC_ORDER`): a
/// private key is in `1..EC_ORDER`.
const EC_ORDER_HEX: &str = "0800000000000010ffffffffffffffffb781126dcae7b2321e66a241adc64d2f";

/// A private key drawn uniformly from `1..EC_ORDER` (rejection sampling over 252-bit draws).
pub(crate) fn new_private_key() -> Result<Felt, String> {
    let order = Felt::from_hex(EC_ORDER_HEX).expect("the curve order");
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| format!("the system's randomness: {e}"))?;
        bytes[0] &= 0x0f;
        let k = Felt::from_bytes_be(&bytes);
        if k != Felt::ZERO && k < order {
            return Ok(k);
        }
    }
}

pub(crate) fn keygen(out: &Path, name: &str, scheme: &str) -> Result<(), String> {
    poe_ingest::short_string::ShortString::try_from(name)
        .map_err(|e| format!("--name {name:?}: {e}"))?;
    poe_ingest::commitment::Scheme::ALL
        .iter()
        .find(|s| s.name() == scheme)
        .ok_or_else(|| format!("--commitment {scheme:?}: not one of keccak256, poseidon-bn254, poseidon-felt252, pedersen-felt252"))?;
    let private_key = new_private_key()?;
    let public_key = starknet_crypto::get_public_key(&private_key);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(out).map_err(|e| {
        format!(
            "{}: {e} (an existing key is never overwritten)",
            out.display()
        )
    })?;
    writeln!(file, "{private_key:#066x}")
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "private key written to {} (mode 0600): keep it with the rollup, never send it",
        out.display()
    );
    println!("public key {public_key:#066x}");
    println!();
    println!(
        "# the registry entry for poe.toml (specs/api.md §1); pick a free id and list instruments"
    );
    println!("[[rollups]]\nid = 1\nname = \"{name}\"\npublic_key = \"{public_key:#066x}\"\ncommitment = \"{scheme}\"");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_keys_are_distinct_in_range_and_sign() {
        let order = Felt::from_hex(EC_ORDER_HEX).unwrap();
        let a = new_private_key().unwrap();
        let b = new_private_key().unwrap();
        assert_ne!(a, b);
        for k in [a, b] {
            assert!(k != Felt::ZERO && k < order);
            let msg = Felt::from(42u64);
            let nonce = starknet_crypto::rfc6979_generate_k(&msg, &k, None);
            let sig = starknet_crypto::sign(&k, &msg, &nonce).unwrap();
            let public = starknet_crypto::get_public_key(&k);
            assert!(starknet_crypto::verify(&public, &msg, &sig.r, &sig.s).unwrap());
        }
    }
}
