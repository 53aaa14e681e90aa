//! The Worker's `fetch` handler: the same ingest API, auth, limits, CORS and
//! answers as `contrail serve`, with storage in buffer Durable Objects.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use futures::future::try_join_all;
use js_sys::Reflect;
use wasm_bindgen::JsValue;
use worker::{Context, Date, Env, Headers, Method, Request, RequestInit, Response, event};

use super::error::Error;
use super::protocol::{STORE_URL, StoreAnswer, StoreRequest};
use super::{Configured, binding, configured};
use crate::cors;
use crate::error::IngestError;
use crate::event::Event;
use crate::ingest::{Endpoint, IngestAnswer, IngestRequest, Prepared, TELEMETRY_PATH};
use crate::keys::KeyKind;
use crate::normalise::Geo;
use crate::shard::{BufferName, region_of, shard_of};

#[event(fetch)]
pub async fn fetch(mut request: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let started = Date::now().as_millis();
    let (method, path) = (request.method(), request.path());
    let origin = request.headers().get("Origin")?;
    let outcome = route(&mut request, &env, origin.as_deref()).await;
    let (mut response, code) = match outcome {
        Ok(response) => (response, "ok"),
        Err(e) => {
            let code = e.code();
            (e.into_response()?, code)
        }
    };
    if method != Method::Options
        && let Some(origin) = &origin
    {
        for (name, value) in cors::answer_headers(origin) {
            response.headers_mut().set(name, value)?;
        }
    }
    // One structured line per request: Workers Logs indexes JSON fields.
    worker::console_log!(
        "{}",
        serde_json::json!({
            "request": { "method": method.to_string(), "path": path, "status": response.status_code(),
                         "outcome": code, "ms": Date::now().as_millis().saturating_sub(started) }
        })
    );
    Ok(response)
}

async fn route(request: &mut Request, env: &Env, origin: Option<&str>) -> Result<Response, Error> {
    let path = request.path();
    match (Endpoint::from_path(&path), request.method()) {
        (Some(endpoint), Method::Post) => ingest(request, env, endpoint, origin).await,
        (Some(_), Method::Options) => preflight(request, env, origin),
        (Some(_), method) => Err(Error::MethodNotAllowed { method: method.to_string(), allow: "POST, OPTIONS" }),
        // analytics.js's telemetry: accepted and discarded (see `TELEMETRY_PATH`).
        (None, Method::Post) if path == TELEMETRY_PATH => Ok(Response::from_json(&serde_json::json!({}))?),
        (None, Method::Options) if path == TELEMETRY_PATH => preflight(request, env, origin),
        (None, method) if path == TELEMETRY_PATH => {
            Err(Error::MethodNotAllowed { method: method.to_string(), allow: "POST, OPTIONS" })
        }
        (None, Method::Get | Method::Head) if path == "/healthz" => {
            Ok(Response::from_json(&serde_json::json!({ "status": "ok" }))?)
        }
        (None, method) if path == "/healthz" => {
            Err(Error::MethodNotAllowed { method: method.to_string(), allow: "GET" })
        }
        (None, method) => Err(Error::NotFound(format!("{method} {path}"))),
    }
}

async fn ingest(request: &mut Request, env: &Env, endpoint: Endpoint, origin: Option<&str>) -> Result<Response, Error> {
    let Configured { settings, ingestor } = configured(env)?;
    let body = read_body(request, ingestor.limits().max_wire_bytes(), ingestor.limits().max_request_bytes).await?;
    let headers = request.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let (authorization, write_key_header, content_encoding) =
        (header("Authorization"), header("X-Write-Key"), header("Content-Encoding"));
    let client_ip = header("CF-Connecting-IP");
    let url = request.inner().url();
    let now_ms = Date::now().as_millis() as i64;
    let received_at = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
    let cf = Cf::of(request);
    let ingest_request = IngestRequest {
        endpoint,
        authorization: authorization.as_deref(),
        write_key_header: write_key_header.as_deref(),
        query: query_of(&url),
        content_encoding: content_encoding.as_deref(),
        body: &body,
        received_at,
        client_ip: client_ip.as_deref(),
        geo: cf.geo(),
    };
    let prepared =
        ingestor.prepare(&ingest_request, |project, _| cors::check_origin(settings.origins(project), origin))?;
    let write_key = &prepared.write_key;

    let region = region_of(settings.region.as_deref(), cf.get("continent").as_deref());
    let shards = settings.shards.of(&prepared.project);
    let buffer = |shard| BufferName { project: prepared.project.as_str().to_owned(), region: region.clone(), shard };
    // One object per request takes the rate-limit token and the quarantine
    // and is written first, so a 429 leaves nothing stored anywhere: the shard
    // of the request's first event, so that a busy write key's requests spread
    // over the shards (each holding 1/shards of the key's bucket) instead of
    // all queueing at one object.
    let home =
        prepared.events.first().map_or_else(|| shard_of(write_key, shards), |(_, e)| shard_of(&e.event_id, shards));
    let mut by_shard: BTreeMap<u32, Vec<&Event>> = BTreeMap::new();
    for (_, event) in &prepared.events {
        by_shard.entry(shard_of(&event.event_id, shards)).or_default().push(event);
    }
    let home_request = StoreRequest {
        buffer: buffer(home).to_string(),
        now_ms,
        rate_key: Some(write_key.clone()),
        rate_shards: shards,
        ids: ids_of(by_shard.get(&home)),
        events: serde_json::value::to_raw_value(&by_shard.remove(&home).unwrap_or_default())?,
        rejected: Cow::Borrowed(&prepared.rejected),
    };
    let namespace = env.durable_object(binding::BUFFERS)?;
    let mut duplicates = match store(&namespace, &home_request).await? {
        StoreAnswer::Stored { duplicates } => duplicates,
        StoreAnswer::RateLimited { retry_after_secs } => {
            return Err(IngestError::RateLimited { retry_after_secs }.into());
        }
    };
    let mut others = Vec::with_capacity(by_shard.len());
    for (shard, events) in &by_shard {
        others.push(StoreRequest {
            buffer: buffer(*shard).to_string(),
            now_ms,
            rate_key: None,
            rate_shards: shards,
            ids: ids_of(Some(events)),
            events: serde_json::value::to_raw_value(events)?,
            rejected: Cow::Borrowed(&[]),
        });
    }
    for answer in try_join_all(others.iter().map(|r| store(&namespace, r))).await? {
        if let StoreAnswer::Stored { duplicates: d } = answer {
            duplicates += d;
        }
    }
    answer(&prepared, duplicates)
}

fn ids_of<'a>(events: Option<&Vec<&'a Event>>) -> Vec<Cow<'a, str>> {
    events.map_or_else(Vec::new, |events| events.iter().map(|e| Cow::Borrowed(e.event_id.as_str())).collect())
}

fn answer(prepared: &Prepared, duplicates: usize) -> Result<Response, Error> {
    let answer: IngestAnswer = prepared.answer(duplicates);
    Ok(Response::from_json(&answer)?)
}

/// One call to one buffer object.
async fn store(namespace: &worker::ObjectNamespace, request: &StoreRequest<'_>) -> Result<StoreAnswer, Error> {
    let stub = namespace.get_by_name(&request.buffer)?;
    let body = js_sys::Uint8Array::from(serde_json::to_vec(request)?.as_slice());
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let mut response = stub.fetch_with_request(Request::new_with_init(STORE_URL, &init)?).await?;
    if response.status_code() != 200 {
        let detail = response.text().await.unwrap_or_default();
        return Err(Error::Runtime(format!("{} answered {}: {detail}", request.buffer, response.status_code())));
    }
    Ok(serde_json::from_slice(&response.bytes().await?)?)
}

/// Reads the body, refusing it (413) as soon as it passes `wire_limit` bytes,
/// before it is all in memory.
async fn read_body(request: &mut Request, wire_limit: usize, decoded_limit: usize) -> Result<Vec<u8>, Error> {
    let too_large = || Error::Ingest(IngestError::PayloadTooLarge { limit: decoded_limit });
    let declared = request.headers().get("Content-Length")?.and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > wire_limit) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    let Ok(mut stream) = request.stream() else {
        return Ok(body); // no body at all
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| IngestError::MalformedJson(format!("could not read the request body: {e}")))?;
        if body.len() + chunk.len() > wire_limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// CORS preflight: answered for any origin (browsers send no key with it)
/// unless the key is in the query string and its project restricts origins.
fn preflight(request: &Request, env: &Env, origin: Option<&str>) -> Result<Response, Error> {
    let url = request.inner().url();
    if let Some(key) = cors::query_write_key(query_of(&url)) {
        let Configured { settings, ingestor } = configured(env)?;
        if let Ok(project) = ingestor.keyring().verify(key, KeyKind::Write) {
            cors::check_origin(settings.origins(&project), origin)?;
        }
    }
    let headers = Headers::new();
    let requested = request.headers().get("Access-Control-Request-Headers")?;
    for (name, value) in cors::preflight_headers(origin, requested.as_deref()) {
        headers.set(name, value)?;
    }
    Ok(Response::empty()?.with_status(204).with_headers(headers))
}

/// The query string of a URL. Split by hand: parsing with the `url` crate
/// would link its IDNA tables, a third of the Worker's size.
fn query_of(url: &str) -> Option<&str> {
    let query = url.split_once('?')?.1;
    Some(query.split_once('#').map_or(query, |(q, _)| q))
}

/// `request.cf`, read field by field: a missing field is `None`, never a panic.
struct Cf(Option<JsValue>);

impl Cf {
    fn of(request: &Request) -> Self {
        Self(Reflect::get(request.inner(), &JsValue::from_str("cf")).ok().filter(|v| v.is_object()))
    }

    fn get(&self, field: &str) -> Option<String> {
        let value = Reflect::get(self.0.as_ref()?, &JsValue::from_str(field)).ok()?;
        value.as_string().filter(|s| !s.is_empty())
    }

    fn geo(&self) -> Geo {
        Geo { country: self.get("country"), region: self.get("region"), city: self.get("city"), colo: self.get("colo") }
    }
}
