//! `poe_client` for Python: the Rust client core (`poe_ingest::client`) — operations parsed
//! against the rollup's registry entry, state roots from poe's own venue engine, the header
//! signed with the rollup's Stark key — and HTTP submission and dry runs.

use poe_ingest::client::RollupClient;
use poe_ingest::registry::{Registry, Rollup as Entry};
use pyo3::exceptions::{PyConnectionError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use starknet_crypto::Felt;

/// A rollup's signing side: its registry entry, private key and replica of its venue state.
#[pyclass(name = "Rollup")]
struct PyRollup {
    entry: Entry,
    client: RollupClient,
}

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

#[pymethods]
impl PyRollup {
    /// `registry_toml`: the `poe.toml` text naming the rollup (its instruments and public key);
    /// `name`: the rollup; `private_key`: its Stark key, hex. Starts from the empty state.
    #[new]
    fn new(registry_toml: &str, name: &str, private_key: &str) -> PyResult<Self> {
        let registry = Registry::parse(registry_toml).map_err(value_error)?;
        let entry = registry
            .get(name)
            .ok_or_else(|| value_error(format!("rollup {name:?} is not in the registry")))?
            .clone();
        let key = Felt::from_hex(private_key.trim()).map_err(value_error)?;
        let client = RollupClient::for_rollup(&entry, key).map_err(value_error)?;
        Ok(Self { entry, client })
    }

    /// The seq of the last batch built (0 before the first).
    #[getter]
    fn seq(&self) -> u64 {
        self.client.seq
    }

    /// The state root now: the next batch's `pre_state_root` (hex).
    #[getter]
    fn state_root(&mut self) -> String {
        self.client.state_root().to_hex()
    }

    /// The signed request body (JSON bytes) of the next batch of `operations_json` (a JSON
    /// array of operations in their wire form), with the state roots the venue engine gives;
    /// the replica moves on. A broken venue rule is a `ValueError` and moves nothing.
    #[pyo3(signature = (operations_json, proof_system = "none", proof = b"".as_slice()))]
    fn batch<'py>(
        &mut self,
        py: Python<'py>,
        operations_json: &str,
        proof_system: &str,
        proof: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let ops = poe_ingest::model::parse_operations(operations_json.as_bytes(), &self.entry)
            .map_err(|r| value_error(format!("{}: {}", r.path, r.message)))?;
        let body = self
            .client
            .try_next_batch(&ops, proof_system, proof)
            .map_err(value_error)?;
        Ok(PyBytes::new(py, &body))
    }

    /// The signed request body (JSON bytes) of a listing of `instruments_json` (a JSON array
    /// of instruments in their wire form) at the end of the rollup's table, for
    /// `list_instruments`; this client's table takes them at once (the server's trades them
    /// from the next UTC day). Bad terms or a name already in the table: `ValueError`.
    fn list_instruments<'py>(
        &mut self,
        py: Python<'py>,
        instruments_json: &str,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let listed = self.append(instruments_json)?;
        let body = poe_ingest::listing::Listing::signed_body(
            self.entry.name.as_str(),
            (self.entry.instruments.len() - listed.len()) as u32,
            &listed,
            &self.client.private_key,
        );
        Ok(PyBytes::new(py, &body))
    }

    /// Appends instruments listed earlier (from `GET /v1/rollups/{rollup}/instruments`, the
    /// ones beyond `poe.toml`'s) to this client's table, without a listing.
    fn add_instruments(&mut self, instruments_json: &str) -> PyResult<()> {
        self.append(instruments_json).map(|_| ())
    }

    /// Applies batches already submitted (their operations, oldest first), so that a client
    /// restarted mid-chain signs the right roots: the replica and seq move on, no body is made.
    fn replay(&mut self, operations_json: &str) -> PyResult<()> {
        let ops = poe_ingest::model::parse_operations(operations_json.as_bytes(), &self.entry)
            .map_err(|r| value_error(format!("{}: {}", r.path, r.message)))?;
        self.client
            .try_next_batch(&ops, "none", b"")
            .map(|_| ())
            .map_err(value_error)
    }
}

impl PyRollup {
    fn append(
        &mut self,
        instruments_json: &str,
    ) -> PyResult<Vec<poe_ingest::registry::NamedInstrument>> {
        let listed = poe_ingest::listing::parse_instruments(instruments_json.as_bytes())
            .map_err(|r| value_error(format!("{}: {}", r.path, r.message)))?;
        self.entry.append(&listed, 0).map_err(value_error)?;
        self.client.add_instruments(&listed);
        Ok(listed)
    }
}

fn post(url: &str, body: &[u8]) -> PyResult<(u16, String)> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(300)))
        .build()
        .new_agent();
    let mut resp = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body)
        .map_err(|e| PyConnectionError::new_err(format!("POST {url}: {e}")))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| PyConnectionError::new_err(format!("POST {url}: {e}")))?;
    Ok((status, text))
}

/// POSTs a batch body to `base_url`'s `/v1/batches`: `(status, response JSON text)` — 202 new,
/// 200 the same batch again (safe to retry), a problem document otherwise.
#[pyfunction]
fn submit(base_url: &str, body: &[u8]) -> PyResult<(u16, String)> {
    post(
        &format!("{}/v1/batches", base_url.trim_end_matches('/')),
        body,
    )
}

/// POSTs a batch body to `base_url`'s `/v1/batches/dry-run`: `(status, response JSON text)` —
/// 200 with the post-state root re-execution gives, nothing stored.
#[pyfunction]
fn dry_run(base_url: &str, body: &[u8]) -> PyResult<(u16, String)> {
    post(
        &format!("{}/v1/batches/dry-run", base_url.trim_end_matches('/')),
        body,
    )
}

/// POSTs a listing body to `base_url`'s `/v1/rollups/{rollup}/instruments`: `(status,
/// response JSON text)` — 202 listed, 200 the same listing again, a problem document otherwise.
#[pyfunction]
fn list_instruments(base_url: &str, rollup: &str, body: &[u8]) -> PyResult<(u16, String)> {
    post(
        &format!(
            "{}/v1/rollups/{rollup}/instruments",
            base_url.trim_end_matches('/')
        ),
        body,
    )
}

/// The public key (hex) of a private key (hex): what the registry names.
#[pyfunction]
fn public_key(private_key: &str) -> PyResult<String> {
    let key = Felt::from_hex(private_key.trim()).map_err(value_error)?;
    Ok(format!("{:#066x}", starknet_crypto::get_public_key(&key)))
}

#[pymodule]
fn poe_client(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRollup>()?;
    m.add_function(wrap_pyfunction!(submit, m)?)?;
    m.add_function(wrap_pyfunction!(dry_run, m)?)?;
    m.add_function(wrap_pyfunction!(public_key, m)?)?;
    m.add_function(wrap_pyfunction!(list_instruments, m)?)?;
    Ok(())
}
