//! Persons (DESIGN §6.1): which distinct ids are one person, resolved at
//! query time from identify and alias events, never by rewriting events.
//!
//! An `identify` with both ids links the anonymous id to the user id; an
//! `alias` links `previousId` to the user id. Links come from all of
//! history, and when one id is linked to two different ids the link of the
//! earliest event wins (ties: the smaller target). Links are transitive: a
//! person's id is where the links from an id end. A cycle (`a → b`, `b → a`,
//! possible when two aliases cross) ends at its smallest id, so every id of
//! the cycle is one person.
//!
//! The links of a table version are read once and cached (a version never
//! changes); the raw rows not yet compacted are small and read per request,
//! and the resolved map is rebuilt only when they add a link.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use contrail_edge::ProjectId;
use datafusion::catalog::TableProvider;
use datafusion::common::{Result as DfResult, exec_err};
use datafusion::datasource::provider_as_source;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::{DataFrame, SessionContext, col};

/// One identity link.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Link {
    /// The id that is linked.
    pub from: String,
    /// The event's time (ms since the epoch).
    pub at: i64,
    /// The id it is linked to.
    pub to: String,
}

/// The columns [`links_in`] reads.
pub const LINK_COLUMNS: [&str; 6] = ["type", "user_id", "anonymous_id", "previous_id", "distinct_id", "timestamp"];

/// The links carried by identify and alias rows of `batch` (any schema
/// holding [`LINK_COLUMNS`]).
pub fn links_in(batch: &RecordBatch) -> Result<Vec<Link>, arrow::error::ArrowError> {
    let text = |name: &str| -> Result<ArrayRef, arrow::error::ArrowError> {
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| arrow::error::ArrowError::SchemaError(format!("no column {name}")))?;
        cast(column, &DataType::Utf8)
    };
    let (kind, user, anonymous, previous, distinct) =
        (text("type")?, text("user_id")?, text("anonymous_id")?, text("previous_id")?, text("distinct_id")?);
    let (kind, user, anonymous, previous, distinct) = (
        kind.as_string::<i32>(),
        user.as_string::<i32>(),
        anonymous.as_string::<i32>(),
        previous.as_string::<i32>(),
        distinct.as_string::<i32>(),
    );
    // Table files hold microseconds (Delta's unit), raw batches milliseconds.
    let at = batch
        .column_by_name("timestamp")
        .ok_or_else(|| arrow::error::ArrowError::SchemaError("no column timestamp".into()))?;
    let at = cast(at, &DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None))?;
    let at = at
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .ok_or_else(|| arrow::error::ArrowError::SchemaError("timestamp did not cast to milliseconds".into()))?;
    fn value(a: &StringArray, i: usize) -> Option<&str> {
        a.is_valid(i).then(|| a.value(i))
    }
    let mut links = Vec::new();
    for i in 0..batch.num_rows() {
        let link = match value(kind, i) {
            Some("identify") => value(anonymous, i).zip(value(user, i)),
            Some("alias") => value(previous, i).zip(value(distinct, i)),
            _ => None,
        };
        if let Some((from, to)) = link.filter(|(from, to)| from != to) {
            links.push(Link { from: from.to_owned(), at: at.value(i), to: to.to_owned() });
        }
    }
    Ok(links)
}

/// Resolved persons: the person of every linked id, and the ids of every person.
#[derive(Debug, Default)]
pub struct PersonMap {
    person_of: HashMap<String, String>,
    ids_of: HashMap<String, Vec<String>>,
}

impl PersonMap {
    /// Resolves `links` (in any order).
    pub fn resolve(links: impl IntoIterator<Item = Link>) -> Self {
        let mut links: Vec<Link> = links.into_iter().collect();
        links.sort_unstable();
        let mut edge: HashMap<&str, &str> = HashMap::new();
        for link in &links {
            // Sorted by (from, at, to): the first link of each id is the earliest.
            edge.entry(&link.from).or_insert(&link.to);
        }
        let mut person_of: HashMap<String, String> = HashMap::with_capacity(edge.len());
        for &start in edge.keys() {
            if person_of.contains_key(start) {
                continue;
            }
            let mut path = vec![start];
            let person = loop {
                let last = *path.last().unwrap_or(&start);
                if let Some(known) = person_of.get(last) {
                    break known.clone();
                }
                match edge.get(last) {
                    None => break last.to_owned(),
                    Some(&next) => {
                        if let Some(at) = path.iter().position(|&p| p == next) {
                            break path[at..].iter().min().map_or(next, |m| *m).to_owned();
                        }
                        path.push(next);
                    }
                }
            };
            for id in path {
                if id != person {
                    person_of.insert(id.to_owned(), person.clone());
                }
            }
        }
        // A cycle's smallest id maps to itself: it is the person, not linked.
        let mut ids_of: HashMap<String, Vec<String>> = HashMap::new();
        for (id, person) in &person_of {
            ids_of.entry(person.clone()).or_default().push(id.clone());
        }
        for ids in ids_of.values_mut() {
            ids.sort_unstable();
        }
        Self { person_of, ids_of }
    }

    /// The person of `id` (itself when unlinked).
    pub fn person<'a>(&'a self, id: &'a str) -> &'a str {
        self.person_of.get(id).map_or(id, String::as_str)
    }

    /// Every id of `id`'s person, the person's own id first.
    pub fn ids(&self, id: &str) -> Vec<String> {
        let person = self.person(id);
        let mut ids = vec![person.to_owned()];
        ids.extend(self.ids_of.get(person).into_iter().flatten().cloned());
        ids
    }

    /// Linked ids.
    pub fn len(&self) -> usize {
        self.person_of.len()
    }

    /// No links.
    pub fn is_empty(&self) -> bool {
        self.person_of.is_empty()
    }
}

/// A fingerprint of a link list, to tell whether the raw rows' links changed.
fn digest(links: &[Link]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    links.hash(&mut hasher);
    hasher.finish()
}

/// Keeps the earliest of each (from, to) link: analytics.js repeats the same
/// identify on every page, and only the first one can win.
pub fn earliest(mut links: Vec<Link>) -> Vec<Link> {
    links.sort_unstable_by(|a, b| (&a.from, &a.to, a.at).cmp(&(&b.from, &b.to, b.at)));
    links.dedup_by(|later, first| later.from == first.from && later.to == first.to);
    links
}

#[derive(Debug, Default)]
struct Cached {
    /// The links of each table file read (files never change).
    files: HashMap<String, Arc<Vec<Link>>>,
    /// The version and raw links the map was built for.
    built_for: Option<(Option<u64>, u64)>,
    map: Arc<PersonMap>,
}

/// Person maps per project. The links of each table file are read once (a
/// new version reads only its new files); the map is rebuilt when the
/// version or the raw rows' links change.
#[derive(Debug, Default)]
pub struct PersonCache {
    projects: Mutex<HashMap<ProjectId, Cached>>,
}

impl PersonCache {
    /// Whether `file`'s links are cached.
    pub fn has_read(&self, project: &ProjectId, file: &str) -> bool {
        let projects = self.projects.lock().unwrap_or_else(|e| e.into_inner());
        projects.get(project).is_some_and(|c| c.files.contains_key(file))
    }

    /// Caches the links read from `file`.
    pub fn remember(&self, project: &ProjectId, file: &str, links: Vec<Link>) {
        let links = Arc::new(earliest(links));
        let mut projects = self.projects.lock().unwrap_or_else(|e| e.into_inner());
        projects.entry(project.clone()).or_default().files.insert(file.to_owned(), links);
    }

    /// The person map for `version`, whose table files are `files` (their
    /// links remembered), plus the raw rows' `raw` links.
    pub fn map(&self, project: &ProjectId, version: Option<u64>, files: &[String], raw: Vec<Link>) -> Arc<PersonMap> {
        let raw = earliest(raw);
        let key = (version, digest(&raw));
        let mut projects = self.projects.lock().unwrap_or_else(|e| e.into_inner());
        let cached = projects.entry(project.clone()).or_default();
        if cached.built_for == Some(key) {
            return cached.map.clone();
        }
        // Files a later version removed (merged or vacuumed) are forgotten.
        cached.files.retain(|f, _| files.contains(f));
        let table = files.iter().filter_map(|f| cached.files.get(f)).flat_map(|l| l.iter().cloned());
        let map = Arc::new(PersonMap::resolve(table.chain(raw)));
        tracing::debug!(project = %project, ?version, linked = map.len(), "person map built");
        cached.built_for = Some(key);
        cached.map = map.clone();
        map
    }
}

/// `person_id(distinct_id)`: the person of a distinct id, for this request's map.
pub fn person_id_udf(map: Arc<PersonMap>) -> ScalarUDF {
    ScalarUDF::from(PersonId {
        map,
        signature: Signature::one_of(
            vec![TypeSignature::Exact(vec![DataType::Utf8]), TypeSignature::Exact(vec![DataType::Utf8View])],
            Volatility::Stable,
        ),
    })
}

#[derive(Debug)]
struct PersonId {
    map: Arc<PersonMap>,
    signature: Signature,
}

impl PartialEq for PersonId {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.map, &other.map)
    }
}

impl Eq for PersonId {}

impl Hash for PersonId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.map).hash(state);
    }
}

impl ScalarUDFImpl for PersonId {
    fn name(&self) -> &str {
        "person_id"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [id] = args.args.as_slice() else {
            return exec_err!("person_id takes one distinct id");
        };
        let ids = cast(&id.to_array(args.number_rows)?, &DataType::Utf8)?;
        let ids = ids.as_string::<i32>();
        if self.map.is_empty() {
            return Ok(ColumnarValue::Array(Arc::new(ids.clone())));
        }
        let persons: StringArray = ids.iter().map(|id| id.map(|id| self.map.person(id))).collect();
        Ok(ColumnarValue::Array(Arc::new(persons)))
    }
}

/// The `persons(distinct_id, person_id)` view: every distinct id in `events`
/// with its person, through the session's `person_id`.
pub fn view(ctx: &SessionContext, events: Arc<dyn TableProvider>) -> DfResult<Arc<dyn TableProvider>> {
    let person = ctx.udf("person_id")?.call(vec![col("distinct_id")]).alias("person_id");
    // Scanned under its own name, so the sandbox sees a scan of `events`.
    let scan = LogicalPlanBuilder::scan("events", provider_as_source(events), None)?.build()?;
    let frame = DataFrame::new(ctx.state(), scan).select(vec![col("distinct_id"), person])?.distinct()?;
    Ok(frame.into_view())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(from: &str, at: i64, to: &str) -> Link {
        Link { from: from.into(), at, to: to.into() }
    }

    #[test]
    fn links_are_transitive_and_the_earliest_wins() {
        let map = PersonMap::resolve([
            link("anon-1", 10, "alice"),
            link("anon-1", 5, "bob"),
            link("bob", 20, "robert"),
            link("anon-2", 1, "anon-1"),
        ]);
        assert_eq!(map.person("anon-1"), "robert");
        assert_eq!(map.person("anon-2"), "robert");
        assert_eq!(map.person("bob"), "robert");
        assert_eq!(map.person("alice"), "alice");
        assert_eq!(map.person("stranger"), "stranger");
        assert_eq!(map.ids("anon-2"), vec!["robert", "anon-1", "anon-2", "bob"]);
    }

    #[test]
    fn the_map_is_built_once_per_version_and_raw_links_and_files_are_read_once() {
        let cache = PersonCache::default();
        let project = ProjectId::parse("demo").unwrap();
        let files = vec!["f1".to_owned()];
        assert!(!cache.has_read(&project, "f1"));
        cache.remember(&project, "f1", vec![link("a", 1, "u"), link("a", 5, "u")]);
        assert!(cache.has_read(&project, "f1"), "a file's links are read once");
        let first = cache.map(&project, Some(3), &files, vec![link("b", 2, "u")]);
        let again = cache.map(&project, Some(3), &files, vec![link("b", 2, "u")]);
        assert!(Arc::ptr_eq(&first, &again), "same version and raw links: the cached map");
        let more = cache.map(&project, Some(3), &files, vec![link("b", 2, "u"), link("c", 3, "b")]);
        assert!(!Arc::ptr_eq(&first, &more));
        assert_eq!(more.person("c"), "u");
        // Version 4 replaced f1 by f2: f1's links are gone with it.
        cache.remember(&project, "f2", Vec::new());
        let next = cache.map(&project, Some(4), &["f2".to_owned()], Vec::new());
        assert_eq!(next.person("a"), "a");
        assert!(!cache.has_read(&project, "f1"));
    }

    #[test]
    fn a_cycle_is_one_person_named_by_its_smallest_id() {
        let map = PersonMap::resolve([link("b", 1, "c"), link("c", 2, "a"), link("a", 3, "b"), link("d", 4, "c")]);
        for id in ["a", "b", "c", "d"] {
            assert_eq!(map.person(id), "a", "{id}");
        }
    }
}
