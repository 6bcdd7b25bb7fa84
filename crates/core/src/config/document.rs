//! From TOML text to the wire structs, with every error tied to a key path.
//!
//! The text is parsed once into toml's spanned tree. Each section (`[server]`,
//! `[control]`, every `[[subnet]]` and `[[failover]]`) is then decoded on its
//! own, so a mistake in one does not hide the others. A serde error carries
//! only a byte span; [`decode_table`] finds the key whose span holds it, names it
//! (`subnet[1].pd-pools[0].bogus`), removes that key and decodes again, so
//! every unknown key and badly typed value of a section is reported, and the
//! rest of the section is still validated.

use super::wire::{ControlWire, FailoverWire, OptionWire, ServerWire, SubnetWire};
use super::ConfigError;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// Errors found so far, and the keys removed because their value was
/// unusable (validation does not also call those "missing").
#[derive(Debug, Default)]
pub(super) struct Errors {
    list: Vec<ConfigError>,
    removed: HashSet<String>,
}

impl Errors {
    /// Records an error at `path`.
    pub(super) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.list.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Whether the key at `path` was present but dropped after an error.
    pub(super) fn was_removed(&self, path: &str) -> bool {
        self.removed.contains(path)
    }

    /// How many errors were recorded so far.
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether any error was recorded.
    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The errors, in the order their keys appear in the file (errors about
    /// absent keys come after the keys present in their table).
    pub(super) fn into_sorted(self, positions: &Positions) -> Vec<ConfigError> {
        let mut list = self.list;
        list.sort_by_key(|e| positions.of(&e.path));
        list
    }
}

/// The sections of a parsed file, decoded; `None` where a section could not
/// be decoded at all (the error is recorded).
#[derive(Debug, Default)]
pub(super) struct Sections {
    /// `[server]`, if present.
    pub(super) server: Option<ServerWire>,
    /// Whether a `server` key exists at all (decodable or not).
    pub(super) server_present: bool,
    /// Whether a `subnet` key exists at all (decodable or not).
    pub(super) subnet_present: bool,
    pub(super) control: Option<ControlWire>,
    pub(super) subnets: Vec<Option<SubnetWire>>,
    pub(super) failover: Vec<Option<FailoverWire>>,
    /// Top-level `[[options]]`: sent on every subnet that does not set the
    /// same option.
    pub(super) options: Vec<Option<OptionWire>>,
}

/// Where each key path starts in the text, and where the last key under it
/// starts, to sort errors in file order.
#[derive(Debug, Default)]
pub(super) struct Positions(HashMap<String, (usize, usize)>);

impl Positions {
    fn record(&mut self, path: &str, at: usize) {
        let slot = self.0.entry(path.to_string()).or_insert((at, at));
        slot.0 = slot.0.min(at);
        slot.1 = slot.1.max(at);
    }

    /// Marks `at` as inside `path` and each of its ancestors.
    fn extend(&mut self, path: &str, at: usize) {
        let mut p = path;
        while let Some(cut) = p.rfind(['.', '[']) {
            p = p.get(..cut).unwrap_or("");
            if let Some(slot) = self.0.get_mut(p) {
                slot.1 = slot.1.max(at);
            }
        }
    }

    /// Sort key of an error at `path`: where the key starts; for a key
    /// absent from the file, just after the last key of its nearest
    /// ancestor that is present, or the end of the file.
    fn of(&self, path: &str) -> (usize, bool) {
        if let Some((start, _)) = self.0.get(path) {
            return (*start, false);
        }
        let mut p = path;
        while let Some(cut) = p.rfind(['.', '[']) {
            p = p.get(..cut).unwrap_or("");
            if let Some((_, end)) = self.0.get(p) {
                return (*end, true);
            }
        }
        // A whole section that is absent: after everything in the file.
        (usize::MAX, true)
    }
}

/// Parses `text` into sections. TOML syntax errors (all of them) come back
/// as errors whose path is `line L, column C`; nothing else is checked then.
pub(super) fn parse(text: &str, errors: &mut Errors) -> Option<(Sections, Positions)> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let mut syntax: Vec<(usize, String)> = syntax
            .iter()
            .map(|e| (e.span().map_or(0, |s| s.start), e.message().to_string()))
            .collect();
        syntax.sort_by_key(|(at, _)| *at);
        for (at, message) in syntax {
            errors.push(line_col(text, at), message);
        }
        return None;
    }
    let root = root.into_inner();
    let mut positions = Positions::default();
    for (k, v) in root.iter() {
        index(v, &key_path("", k.get_ref()), k.span().start, &mut positions);
    }
    Some((split(root, errors), positions))
}

fn line_col(text: &str, at: usize) -> String {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count().saturating_add(1);
    let column = before
        .rsplit('\n')
        .next()
        .unwrap_or("")
        .chars()
        .count()
        .saturating_add(1);
    format!("line {line}, column {column}")
}

/// `base.key`, quoting keys that are not bare TOML keys.
fn key_path(base: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let key = if bare { key.to_string() } else { format!("{key:?}") };
    if base.is_empty() {
        key
    } else {
        format!("{base}.{key}")
    }
}

fn index(value: &Spanned<DeValue<'_>>, path: &str, at: usize, out: &mut Positions) {
    out.record(path, at);
    out.extend(path, at);
    match value.get_ref() {
        DeValue::Table(t) => {
            for (k, v) in t.iter() {
                index(v, &key_path(path, k.get_ref()), k.span().start, out);
            }
        }
        DeValue::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                index(v, &format!("{path}[{i}]"), v.span().start, out);
            }
        }
        _ => {}
    }
}

const TOP_KEYS: &str = "expected one of `server`, `control`, `subnet`, `failover`, `options`";

fn split(root: DeTable<'_>, errors: &mut Errors) -> Sections {
    let mut s = Sections::default();
    for (k, v) in root {
        match k.get_ref().as_ref() {
            "server" => {
                s.server_present = true;
                s.server = decode_table(v, "server", errors);
            }
            "control" => s.control = decode_table(v, "control", errors),
            "subnet" => {
                s.subnet_present = true;
                s.subnets = decode_array(v, "subnet", errors);
            }
            "failover" => s.failover = decode_array(v, "failover", errors),
            "options" => s.options = decode_array(v, "options", errors),
            other => errors.push(key_path("", other), format!("unknown key; {TOP_KEYS}")),
        }
    }
    s
}

fn decode_array<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    path: &str,
    errors: &mut Errors,
) -> Vec<Option<T>> {
    match value.into_inner() {
        DeValue::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| decode_table(item, &format!("{path}[{i}]"), errors))
            .collect(),
        DeValue::Table(_) => {
            errors.push(
                path,
                format!("must be an array of tables: write [[{path}]], not [{path}]"),
            );
            Vec::new()
        }
        other => {
            errors.push(
                path,
                format!(
                    "expected an array of tables ([[{path}]]), found {}",
                    other.type_str()
                ),
            );
            Vec::new()
        }
    }
}

/// Decodes one table into `T`, recording every error with its key path.
/// Keys whose value is unusable are dropped (and remembered in
/// [`Errors::was_removed`]) so the rest of the table still decodes.
fn decode_table<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    path: &str,
    errors: &mut Errors,
) -> Option<T> {
    if !value.get_ref().is_table() {
        errors.push(
            path,
            format!("expected a table, found {}", value.get_ref().type_str()),
        );
        return None;
    }
    let mut value = value;
    loop {
        let err = match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(t) => return Some(t),
            Err(e) => e,
        };
        let message = humanize(err.message());
        let located = err
            .span()
            .and_then(|span| remove_at(value.get_mut(), path, &span));
        match located {
            Some(Removed { reported, key }) => {
                errors.push(reported.clone(), message);
                errors.removed.insert(reported);
                errors.removed.insert(key);
            }
            None => {
                // Not tied to a key we can drop: report at the table and stop.
                errors.push(path, message);
                return None;
            }
        }
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// What [`remove_at`] found and dropped.
struct Removed {
    /// Path of the innermost thing holding the error's span (an array
    /// element keeps its index here).
    reported: String,
    /// Path of the key removed: `reported`, or the key of the array holding
    /// it (removing one element would shift the indices of the others).
    key: String,
}

/// Finds the innermost key (of any table at or under `value`) whose key or
/// value holds `span`, and removes that key.
fn remove_at(value: &mut DeValue<'_>, path: &str, span: &Range<usize>) -> Option<Removed> {
    match locate(value, path, span)? {
        Found::Removed(r) => Some(r),
        Found::InArray(_) => None,
    }
}

enum Found {
    /// Found and removed.
    Removed(Removed),
    /// Found at this path inside an array; the enclosing table removes the
    /// array's key.
    InArray(String),
}

fn locate(value: &mut DeValue<'_>, path: &str, span: &Range<usize>) -> Option<Found> {
    match value {
        DeValue::Table(t) => {
            let mut hit: Option<(Spanned<DeString<'_>>, String, String)> = None;
            for (k, v) in t.iter_mut() {
                let p = key_path(path, k.get_ref());
                match locate(v.get_mut(), &p, span) {
                    Some(Found::Removed(r)) => return Some(Found::Removed(r)),
                    Some(Found::InArray(reported)) => {
                        hit = Some((k.clone(), reported, p));
                        break;
                    }
                    None => {}
                }
                if contains(&k.span(), span) || contains(&v.span(), span) {
                    hit = Some((k.clone(), p.clone(), p));
                    break;
                }
            }
            let (k, reported, key) = hit?;
            t.remove(&k);
            Some(Found::Removed(Removed { reported, key }))
        }
        DeValue::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                let p = format!("{path}[{i}]");
                if let Some(found) = locate(v.get_mut(), &p, span) {
                    return Some(found);
                }
                if contains(&v.span(), span) {
                    return Some(Found::InArray(p));
                }
            }
            None
        }
        _ => None,
    }
}

/// serde's messages, in the config file's words.
fn humanize(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        return match rest.split_once("`, ") {
            Some((_, expected)) => format!("unknown key; {expected}"),
            None => "unknown key".to_string(),
        };
    }
    if let Some((head, _)) = message.split_once(", expected struct ") {
        return format!("{head}, expected a table");
    }
    message
        .replace("expected a sequence", "expected an array")
        .replace("expected u64", "expected a whole number")
        .replace("expected f64", "expected a number")
}
