//! `crm-server export` and `import`: a tenant's metadata and data as NDJSON, one JSON object a
//! line, streamed page by page, with a progress bar on a terminal.
//!
//! ```text
//! {"type":"header","format":"crm-platform-export","version":1,"org":"acme","exportedAt":"…","models":["Member",…]}
//! {"type":"definition","definition":{…}}          custom fields and objects, inactive ones too
//! {"type":"record","model":"Member","data":{…}}   every stored field: id, stamps, version, deletedAt
//! {"type":"log","log":"crm_history","data":{…}}   property history, stage transitions, audit log
//! {"type":"end","records":1234,"logs":5678}
//! ```
//!
//! Records come model by model in an order an import can insert them in; an import takes a
//! file into an empty tenant in one transaction, and refuses a file without its `end` line (a
//! truncated file imports nothing). Attachments' bytes are not in the file: they stay in the
//! file storage under the tenant's keys.

use std::io::{BufRead, IsTerminal, Write};

use crm_model::OrgId;
use crm_orm::Store;
use crm_orm::sql::transfer::{LOGS, model_order};
use serde_json::{Value as Json, json};

use crate::ServerError;

/// The `format` of the header line.
pub const FORMAT: &str = "crm-platform-export";
/// The file format's version.
pub const VERSION: i64 = 1;
/// Records read (and inserted) at a time.
const PAGE: u32 = 500;

fn io(e: std::io::Error) -> ServerError {
    ServerError::Io(e)
}

/// A progress bar on stderr, drawn only on a terminal.
struct Progress {
    total: u64,
    done: u64,
    shown: bool,
    last: std::time::Instant,
}

impl Progress {
    fn new(total: u64) -> Progress {
        Progress { total, done: 0, shown: std::io::stderr().is_terminal(), last: std::time::Instant::now() }
    }

    fn advance(&mut self, n: u64, what: &str) {
        self.done += n;
        if !self.shown || (self.last.elapsed().as_millis() < 100 && self.done < self.total) {
            return;
        }
        self.last = std::time::Instant::now();
        let total = self.total.max(1);
        let filled = usize::try_from(self.done.min(total) * 30 / total).unwrap_or(0);
        let bar = format!("{}{}", "#".repeat(filled), ".".repeat(30usize.saturating_sub(filled)));
        eprint!("\r[{bar}] {:>3}% {:<24}", self.done.min(total) * 100 / total, what);
        let _ = std::io::stderr().flush();
    }

    fn end(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

/// Writes tenant `org`'s definitions, records and logs to `out`; returns the records written.
///
/// # Errors
/// Database and output failures.
pub async fn export(store: &Store, org: &OrgId, out: &mut dyn Write) -> Result<u64, ServerError> {
    let platform = store.cross_tenant_platform_work();
    let catalog = platform.tenant_catalog(org).await?;
    let order = model_order(&catalog);
    // The totals only serve the progress bar: counted only when it is drawn.
    let mut progress = Progress::new(0);
    if progress.shown {
        for name in &order {
            if let Some(m) = catalog.model(name.as_str()) {
                progress.total += u64::try_from(platform.count_records(org, m).await?).unwrap_or(0);
            }
        }
        for log in LOGS {
            progress.total += u64::try_from(platform.count_log(org, log).await?).unwrap_or(0);
        }
    }
    let mut line = |v: &Json| -> Result<(), ServerError> {
        serde_json::to_writer(&mut *out, v).map_err(|e| ServerError::Config(e.to_string()))?;
        out.write_all(b"\n").map_err(io)
    };
    let names: Vec<&str> = order.iter().map(crm_model::ModelName::as_str).collect();
    line(&json!({ "type": "header", "format": FORMAT, "version": VERSION, "org": org.as_str(),
                  "exportedAt": chrono::Utc::now().to_rfc3339(), "models": names }))?;
    for def in platform.export_definitions(org).await? {
        line(&json!({ "type": "definition", "definition": def }))?;
    }
    let (mut records, mut logs) = (0u64, 0u64);
    for name in &order {
        let Some(m) = catalog.model(name.as_str()) else { continue };
        let mut after = None;
        loop {
            let rows = platform.export_records(&catalog, org, m, after, PAGE).await?;
            for row in &rows {
                line(&json!({ "type": "record", "model": name.as_str(), "data": row }))?;
            }
            records += rows.len() as u64;
            progress.advance(rows.len() as u64, name.as_str());
            after = match rows.last().and_then(|r| r.get("id")).and_then(Json::as_str).map(uuid::Uuid::parse_str) {
                Some(Ok(id)) if rows.len() == PAGE as usize => Some(id),
                _ => break,
            };
        }
    }
    for log in LOGS {
        let mut after = 0i64;
        loop {
            let rows = platform.export_log(org, log, after, PAGE).await?;
            for row in &rows {
                let mut data = row.clone();
                if let Some(o) = data.as_object_mut() {
                    o.remove("seq");
                }
                line(&json!({ "type": "log", "log": log.table, "data": data }))?;
            }
            logs += rows.len() as u64;
            progress.advance(rows.len() as u64, log.table);
            match rows.last().and_then(|r| r.get("seq")).and_then(Json::as_i64) {
                Some(seq) if rows.len() == PAGE as usize => after = seq,
                _ => break,
            }
        }
    }
    line(&json!({ "type": "end", "records": records, "logs": logs }))?;
    out.flush().map_err(io)?;
    progress.end();
    Ok(records)
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Records inserted.
    pub records: u64,
    /// Log entries inserted.
    pub logs: u64,
}

/// `key` of object `j` (null when missing).
fn at<'a>(j: &'a Json, key: &str) -> &'a Json {
    j.get(key).unwrap_or(&Json::Null)
}

fn bad(line: usize, message: impl Into<String>) -> ServerError {
    ServerError::Config(format!("line {line}: {}", message.into()))
}

/// Reads an export from `input` (of `size` bytes, when known: the progress bar's total) into
/// tenant `org` (the file's own by default), which must be empty. All or nothing.
///
/// # Errors
/// A file of another format or version, a malformed or truncated file, a tenant with data,
/// database failures: nothing is imported then.
pub async fn import(store: &Store, org: Option<&OrgId>, input: &mut dyn BufRead, size: Option<u64>) -> Result<Imported, ServerError> {
    let mut lines = input.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (_, first) = lines.next().ok_or_else(|| bad(1, "empty file"))?;
    let first = first.map_err(io)?;
    let header: Json = serde_json::from_str(&first).map_err(|e| bad(1, format!("not JSON: {e}")))?;
    if at(&header, "type") != "header" || at(&header, "format") != FORMAT {
        return Err(bad(1, format!("not a {FORMAT} file")));
    }
    if at(&header, "version").as_i64() != Some(VERSION) {
        return Err(bad(1, format!("format version {} is not {VERSION}", at(&header, "version"))));
    }
    let file_org = at(&header, "org").as_str().ok_or_else(|| bad(1, "no org"))?;
    let org = match org {
        Some(o) => o.clone(),
        None => OrgId::new(file_org).map_err(|e| bad(1, e.to_string()))?,
    };
    let platform = store.cross_tenant_platform_work();
    let mut import = platform.import(&org).await?;
    let mut progress = Progress::new(size.unwrap_or(0));
    let mut defs = Vec::new();
    let mut batch: Vec<Json> = Vec::new();
    // What the batch holds: ("record", model) or ("log", table), and the line it started at.
    let mut batch_of: Option<(String, String, usize)> = None;
    let (mut records, mut logs, mut ended) = (0u64, 0u64, None::<(u64, u64)>);
    for (n, line) in lines {
        let line = line.map_err(io)?;
        progress.advance(line.len() as u64 + 1, "importing");
        if line.trim().is_empty() {
            continue;
        }
        if ended.is_some() {
            return Err(bad(n, "a line after the end line"));
        }
        let item: Json = serde_json::from_str(&line).map_err(|e| bad(n, format!("not JSON: {e}")))?;
        let kind = at(&item, "type").as_str().unwrap_or_default().to_owned();
        let key = match kind.as_str() {
            "definition" => {
                if batch_of.is_some() {
                    return Err(bad(n, "definitions come before records and logs"));
                }
                defs.push(serde_json::from_value(at(&item, "definition").clone()).map_err(|e| bad(n, format!("not a definition: {e}")))?);
                continue;
            }
            "record" => at(&item, "model").as_str().map(str::to_owned).ok_or_else(|| bad(n, "a record without its model"))?,
            "log" => at(&item, "log").as_str().map(str::to_owned).ok_or_else(|| bad(n, "a log entry without its log"))?,
            "end" => {
                ended = Some((at(&item, "records").as_u64().unwrap_or(u64::MAX), at(&item, "logs").as_u64().unwrap_or(u64::MAX)));
                continue;
            }
            other => return Err(bad(n, format!("unknown line type `{other}`"))),
        };
        if batch_of.is_none() {
            import.definitions(&defs).await?;
        }
        let same = batch_of.as_ref().is_some_and(|(k, name, _)| *k == kind && *name == key);
        if !same || batch.len() >= PAGE as usize {
            flush(&mut import, batch_of.take(), &mut batch, &mut records, &mut logs).await?;
            batch_of = Some((kind, key, n));
        }
        batch.push(at(&item, "data").clone());
    }
    if batch_of.is_none() {
        import.definitions(&defs).await?;
    }
    flush(&mut import, batch_of.take(), &mut batch, &mut records, &mut logs).await?;
    match ended {
        None => return Err(ServerError::Config("the file has no end line: it is truncated; nothing was imported".to_owned())),
        Some(counts) if counts != (records, logs) => {
            return Err(ServerError::Config(format!(
                "the end line counts {} records and {} log entries, the file holds {records} and {logs}; nothing was imported",
                counts.0, counts.1
            )));
        }
        Some(_) => {}
    }
    import.finish().await?;
    progress.end();
    Ok(Imported { records, logs })
}

async fn flush(
    import: &mut crm_orm::Import,
    of: Option<(String, String, usize)>,
    batch: &mut Vec<Json>,
    records: &mut u64,
    logs: &mut u64,
) -> Result<(), ServerError> {
    let Some((kind, name, line)) = of else { return Ok(()) };
    let path = format!("line {line}");
    if kind == "record" {
        import.records(&name, batch, &path).await?;
        *records += batch.len() as u64;
    } else {
        import.log(&name, batch, &path).await?;
        *logs += batch.len() as u64;
    }
    batch.clear();
    Ok(())
}
