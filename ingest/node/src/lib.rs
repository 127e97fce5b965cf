//! `poe-client` for Node.js and TypeScript: the Rust client core (`poe_ingest::client`) —
//! operations parsed against the rollup's registry entry, state roots from poe's own venue
//! engine, the header signed with the rollup's Stark key — and HTTP submission and dry runs,
//! run on libuv's thread pool so that they return promises and never block the event loop.
//!
//! A native addon rather than WebAssembly: the pinned nightly has no `wasm32` standard library
//! on this project's machines, and none can be fetched (`README.md`, Known issues). The Rust
//! core is the same either way; only the packaging differs.

use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Error, Result, Task};
use napi_derive::napi;
use poe_ingest::client::RollupClient;
use poe_ingest::registry::{Registry, Rollup as Entry};
use starknet_crypto::Felt;

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::new(napi::Status::InvalidArg, e.to_string())
}

/// A rollup's signing side: its registry entry, private key and replica of its venue state.
#[napi]
pub struct Rollup {
    entry: Entry,
    client: RollupClient,
}

#[napi]
impl Rollup {
    /// `registryToml`: the `poe.toml` text naming the rollup (its instruments and public key);
    /// `name`: the rollup; `privateKey`: its Stark key, hex. Starts from the empty state.
    /// A key that is not the registry's throws.
    #[napi(constructor)]
    pub fn new(registry_toml: String, name: String, private_key: String) -> Result<Self> {
        let registry = Registry::parse(&registry_toml).map_err(invalid)?;
        let entry = registry
            .get(&name)
            .ok_or_else(|| invalid(format!("rollup {name:?} is not in the registry")))?
            .clone();
        let key = Felt::from_hex(private_key.trim()).map_err(invalid)?;
        let client = RollupClient::for_rollup(&entry, key).map_err(invalid)?;
        Ok(Self { entry, client })
    }

    /// The seq of the last batch built (0 before the first).
    #[napi(getter)]
    pub fn seq(&self) -> i64 {
        // A seq past 2^53 would take a batch a microsecond for 285 years.
        self.client.seq as i64
    }

    /// The state root now (hex): the next batch's `pre_state_root`.
    #[napi(getter)]
    pub fn state_root(&mut self) -> String {
        self.client.state_root().to_hex()
    }

    /// The signed request body (JSON bytes) of the next batch of `operationsJson` (a JSON array
    /// of operations in their wire form), with the state roots the venue engine gives; the
    /// replica moves on. A broken venue rule throws, naming `operations[i]`, and moves nothing.
    #[napi]
    pub fn batch(
        &mut self,
        operations_json: String,
        proof_system: Option<String>,
        proof: Option<Buffer>,
    ) -> Result<Buffer> {
        let ops = self.parse(&operations_json)?;
        let proof = proof.as_deref().unwrap_or(&[]);
        let body = self
            .client
            .try_next_batch(&ops, proof_system.as_deref().unwrap_or("none"), proof)
            .map_err(invalid)?;
        Ok(body.into())
    }

    /// The signed request body of a listing of `instrumentsJson` (a JSON array of instruments
    /// in their wire form) at the end of the rollup's table, for `listInstruments`; this
    /// client's table takes them at once (the server's trades them from the next UTC day).
    /// Bad terms or a name already in the table throw.
    #[napi]
    pub fn list_instruments(&mut self, instruments_json: String) -> Result<Buffer> {
        let listed = self.append(&instruments_json)?;
        Ok(poe_ingest::listing::Listing::signed_body(
            self.entry.name.as_str(),
            (self.entry.instruments.len() - listed.len()) as u32,
            &listed,
            &self.client.private_key,
        )
        .into())
    }

    /// Appends instruments listed earlier (from `GET /v1/rollups/{rollup}/instruments`, the
    /// ones beyond `poe.toml`'s) to this client's table, without a listing.
    #[napi]
    pub fn add_instruments(&mut self, instruments_json: String) -> Result<()> {
        self.append(&instruments_json).map(|_| ())
    }

    /// Applies a batch already submitted (its operations), so that a client restarted
    /// mid-chain signs the right roots: the replica and seq move on, no body is made.
    #[napi]
    pub fn replay(&mut self, operations_json: String) -> Result<()> {
        let ops = self.parse(&operations_json)?;
        self.client
            .try_next_batch(&ops, "none", b"")
            .map(|_| ())
            .map_err(invalid)
    }
}

impl Rollup {
    fn append(
        &mut self,
        instruments_json: &str,
    ) -> Result<Vec<poe_ingest::registry::NamedInstrument>> {
        let listed = poe_ingest::listing::parse_instruments(instruments_json.as_bytes())
            .map_err(|r| invalid(format!("{}: {}", r.path, r.message)))?;
        self.entry.append(&listed, 0).map_err(invalid)?;
        self.client.add_instruments(&listed);
        Ok(listed)
    }

    fn parse(&self, operations_json: &str) -> Result<Vec<poe_ingest::commitment::CommittedOp>> {
        poe_ingest::model::parse_operations(operations_json.as_bytes(), &self.entry)
            .map_err(|r| invalid(format!("{}: {}", r.path, r.message)))
    }
}

/// What the server answered.
#[napi(object)]
pub struct HttpResponse {
    /// The HTTP status: 202 new, 200 the same batch again, 4xx/5xx a problem document.
    pub status: u32,
    /// The response body (JSON text).
    pub body: String,
}

/// One POST of a batch body, run off the event loop.
pub struct Post {
    url: String,
    body: Vec<u8>,
}

impl Task for Post {
    type Output = HttpResponse;
    type JsValue = HttpResponse;

    fn compute(&mut self) -> Result<HttpResponse> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(300)))
            .build()
            .new_agent();
        let fail = |e: ureq::Error| Error::from_reason(format!("POST {}: {e}", self.url));
        let mut resp = agent
            .post(&self.url)
            .header("content-type", "application/json")
            .send(&self.body[..])
            .map_err(fail)?;
        let status = u32::from(resp.status().as_u16());
        let body = resp.body_mut().read_to_string().map_err(fail)?;
        Ok(HttpResponse { status, body })
    }

    fn resolve(&mut self, _env: Env, output: HttpResponse) -> Result<HttpResponse> {
        Ok(output)
    }
}

fn post(base_url: &str, path: &str, body: &[u8]) -> AsyncTask<Post> {
    AsyncTask::new(Post {
        url: format!("{}{path}", base_url.trim_end_matches('/')),
        body: body.to_vec(),
    })
}

/// POSTs a batch body to `baseUrl`'s `/v1/batches`: 202 new, 200 the same batch again (safe
/// to retry), a problem document otherwise. Rejects only when no answer came.
#[napi(ts_return_type = "Promise<HttpResponse>")]
pub fn submit(base_url: String, body: Buffer) -> AsyncTask<Post> {
    post(&base_url, "/v1/batches", &body)
}

/// POSTs a batch body to `baseUrl`'s `/v1/batches/dry-run`: 200 with the post-state root
/// re-execution gives and whether the batch would be accepted; nothing is stored.
#[napi(ts_return_type = "Promise<HttpResponse>")]
pub fn dry_run(base_url: String, body: Buffer) -> AsyncTask<Post> {
    post(&base_url, "/v1/batches/dry-run", &body)
}

/// POSTs a listing body to `baseUrl`'s `/v1/rollups/{rollup}/instruments`: 202 listed, 200
/// the same listing again, a problem document otherwise.
#[napi(ts_return_type = "Promise<HttpResponse>")]
pub fn list_instruments(base_url: String, rollup: String, body: Buffer) -> AsyncTask<Post> {
    post(
        &base_url,
        &format!("/v1/rollups/{rollup}/instruments"),
        &body,
    )
}

/// The public key (hex) of a private key (hex): what the registry names.
#[napi]
pub fn public_key(private_key: String) -> Result<String> {
    let key = Felt::from_hex(private_key.trim()).map_err(invalid)?;
    Ok(format!("{:#066x}", starknet_crypto::get_public_key(&key)))
}
