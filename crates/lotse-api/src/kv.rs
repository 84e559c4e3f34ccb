//! `/v1/kv/{key}`: get (one key, `?recurse`, `?keys`, `?raw`), put (`?cas`, `?flags`,
//! `?acquire`, `?release`), delete (`?recurse`, `?cas`), all with Consul's answers.

use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use base64::Engine;
use lotse_core::kv::KvWrite;
use lotse_core::{Command, KvEntry, Outcome, WatchKey};
use lotse_server::{now_ms, Access, Resource};
use serde::Serialize;

use crate::body::read_body;
use crate::params::Params;
use crate::reply::{json, not_found_with_meta, with_meta, ApiError, ApiResult};
use crate::State;

const KV_LIMIT_DOC: &str =
    "https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size";

/// A KV entry as Consul's JSON `DirEntry`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KvJson<'a> {
    pub lock_index: u64,
    pub key: &'a str,
    pub flags: u64,
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<&'a str>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl<'a> From<&'a KvEntry> for KvJson<'a> {
    fn from(e: &'a KvEntry) -> Self {
        KvJson {
            lock_index: e.lock_index,
            key: &e.key,
            flags: e.flags,
            value: (!e.value.is_empty())
                .then(|| base64::engine::general_purpose::STANDARD.encode(&e.value)),
            session: e.session.as_deref(),
            create_index: e.create_index,
            modify_index: e.modify_index,
        }
    }
}

fn missing_key() -> ApiError {
    ApiError::bad_request("Missing key name")
}

pub async fn get_root(state: AxState<State>, params: Params) -> ApiResult {
    get_key(state, String::new(), params).await
}

pub async fn get(state: AxState<State>, Path(key): Path<String>, params: Params) -> ApiResult {
    get_key(state, key, params).await
}

async fn get_key(AxState(state): AxState<State>, key: String, params: Params) -> ApiResult {
    let opts = params.query_options(&state)?;
    let server = &state.server()?;
    let pretty = params.pretty();
    if params.has("keys") {
        server.authorize(
            opts.token.as_deref(),
            Resource::KeyPrefix(&key),
            Access::Read,
        )?;
        // Consul still accepts its historic misspelling.
        let sep = params
            .get("separator")
            .or_else(|| params.get("seperator"))
            .unwrap_or("")
            .to_string();
        let watch = [WatchKey::Prefix(key.clone())];
        let (meta, keys) = server
            .blocking_read(&opts, &watch, |s| s.kv_keys(&key, &sep))
            .await?;
        // An empty store lists as `[]`; an empty prefix is a 404.
        if keys.is_empty() && !key.is_empty() {
            return Ok(not_found_with_meta(&meta));
        }
        return Ok(with_meta(json(&keys, pretty), &meta));
    }
    if params.has("recurse") {
        server.authorize(
            opts.token.as_deref(),
            Resource::KeyPrefix(&key),
            Access::Read,
        )?;
        let watch = [WatchKey::Prefix(key.clone())];
        let (meta, entries) = server
            .blocking_read(&opts, &watch, |s| {
                let (i, list) = s.kv_list(&key);
                (i, list.into_iter().cloned().collect::<Vec<_>>())
            })
            .await?;
        if entries.is_empty() {
            return Ok(not_found_with_meta(&meta));
        }
        let body: Vec<KvJson> = entries.iter().map(KvJson::from).collect();
        return Ok(with_meta(json(&body, pretty), &meta));
    }
    if key.is_empty() {
        return Err(missing_key());
    }
    server.authorize(opts.token.as_deref(), Resource::Key(&key), Access::Read)?;
    let watch = [WatchKey::Key(key.clone())];
    let (meta, entry) = server
        .blocking_read(&opts, &watch, |s| {
            let (i, e) = s.kv_get(&key);
            (i, e.cloned())
        })
        .await?;
    let Some(entry) = entry else {
        return Ok(not_found_with_meta(&meta));
    };
    if params.has("raw") {
        let resp = (
            [
                (header::CONTENT_TYPE, "text/plain"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                // A raw value must never run as a page in a browser.
                (header::CONTENT_SECURITY_POLICY, "sandbox"),
            ],
            entry.value,
        )
            .into_response();
        return Ok(with_meta(resp, &meta));
    }
    Ok(with_meta(json(&[KvJson::from(&entry)], pretty), &meta))
}

pub async fn put_root(state: AxState<State>, params: Params) -> ApiResult {
    params.check_dc(&state)?;
    Err(missing_key())
}

pub async fn put(
    AxState(state): AxState<State>,
    Path(key): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    params.check_dc(&state)?;
    if key.is_empty() {
        return Err(missing_key());
    }
    if params.conflicting(&["cas", "acquire", "release"]) {
        return Err(params.conflict_error());
    }
    let server = &state.server()?;
    server.authorize(params.token.as_deref(), Resource::Key(&key), Access::Write)?;
    let flags = params.go_uint("flags")?.unwrap_or(0);
    let cas = params.go_uint("cas")?;
    let value = read_body(&headers, body, state.limits.kv_max_value_size, KV_LIMIT_DOC).await?;
    let write = KvWrite { key, value, flags };
    let cmd = if let Some(session) = params.get("acquire") {
        Command::KvLock {
            write,
            session: session.to_string(),
            now_ms: now_ms(),
        }
    } else if let Some(session) = params.get("release") {
        Command::KvUnlock {
            write,
            session: session.to_string(),
        }
    } else if let Some(index) = cas {
        Command::KvCas { write, index }
    } else {
        Command::KvSet(write)
    };
    let (_, outcome) = server.write(cmd).await?;
    Ok(json(
        &matches!(outcome, Outcome::Bool(true)),
        params.pretty(),
    ))
}

pub async fn delete_root(state: AxState<State>, params: Params) -> ApiResult {
    delete_key(state, String::new(), params).await
}

pub async fn delete(state: AxState<State>, Path(key): Path<String>, params: Params) -> ApiResult {
    delete_key(state, key, params).await
}

async fn delete_key(AxState(state): AxState<State>, key: String, params: Params) -> ApiResult {
    params.check_dc(&state)?;
    let recurse = params.has("recurse");
    if params.conflicting(&["recurse", "cas"]) {
        return Err(params.conflict_error());
    }
    if !recurse && key.is_empty() {
        return Err(missing_key());
    }
    let server = &state.server()?;
    let resource = if recurse {
        Resource::KeyPrefix(&key)
    } else {
        Resource::Key(&key)
    };
    server.authorize(params.token.as_deref(), resource, Access::Write)?;
    let cmd = if recurse {
        Command::KvDeleteTree { prefix: key }
    } else if let Some(index) = params.go_uint("cas")? {
        Command::KvDeleteCas { key, index }
    } else {
        Command::KvDelete { key }
    };
    let (_, outcome) = server.write(cmd).await?;
    Ok(json(
        &matches!(outcome, Outcome::Bool(true)),
        params.pretty(),
    ))
}
