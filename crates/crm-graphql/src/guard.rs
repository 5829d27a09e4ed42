//! The document guard: a linear pass over a parsed GraphQL document that refuses it, before
//! anything validates or executes it, when it is too large, too deep, has too many
//! aliases, or would select too many fields once its fragments are expanded.
//!
//! Why before validation: validation and execution may expand a fragment spread each time they
//! meet it, so a chain of fragments that each spread the next twice costs `2^n` walks. Here every fragment is summarised once and its summary reused
//! for each spread (memoised), so the pass is `O(nodes)` whatever the shape, and a document that
//! passes expands to at most `max_cost` selections: what validation walks after it is bounded
//! too.

use std::collections::HashMap;

use async_graphql::Positioned;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};

/// The limits the guard applies; see [`crate::SchemaOptions`] for their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentLimits {
    /// Deepest field nesting, fragments expanded (a root field is depth 1).
    pub max_depth: usize,
    /// Most selections (fields, fragment spreads, inline fragments) once every fragment is
    /// expanded, over all operations of the document: the cost budget.
    pub max_cost: usize,
    /// Most aliased fields, fragments expanded.
    pub max_aliases: usize,
    /// Most nodes written in the document (selections, arguments, directives, fragment
    /// definitions), not expanded: bounds the work on unused fragments and huge flat documents.
    pub max_nodes: usize,
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A limit was passed (`LIMIT_EXCEEDED`).
    #[error("{0}")]
    Limit(String),
    /// The document cannot be valid (`BAD_USER_INPUT`): a fragment spreads itself.
    #[error("{0}")]
    Invalid(String),
}

impl Refusal {
    /// The client error: the message with its `extensions.code`.
    #[must_use]
    pub fn into_error(self) -> crate::GraphQLError {
        let code = match &self {
            Refusal::Limit(_) => crm_model::ErrorCode::LimitExceeded,
            Refusal::Invalid(_) => crm_model::ErrorCode::BadUserInput,
        };
        crate::coded(&self.to_string(), code)
    }
}

/// What a selection set amounts to once expanded. Saturating: a 2^40 expansion stays a number.
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    cost: usize,
    depth: usize,
    aliases: usize,
}

enum State {
    Visiting,
    Done(Summary),
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    fragments: HashMap<&'a str, State>,
}

impl<'a> Walk<'a> {
    fn set(&mut self, set: &'a Positioned<SelectionSet>) -> Result<Summary, Refusal> {
        let mut s = Summary::default();
        for sel in &set.node.items {
            let (inner, field) = match &sel.node {
                Selection::Field(f) => {
                    if f.node.alias.is_some() {
                        s.aliases = s.aliases.saturating_add(1);
                    }
                    (self.set(&f.node.selection_set)?, true)
                }
                Selection::InlineFragment(i) => (self.set(&i.node.selection_set)?, false),
                Selection::FragmentSpread(spread) => (self.fragment(spread.node.fragment_name.node.as_str())?, false),
            };
            s.cost = s.cost.saturating_add(1).saturating_add(inner.cost);
            s.aliases = s.aliases.saturating_add(inner.aliases);
            s.depth = s.depth.max(inner.depth.saturating_add(usize::from(field)));
        }
        Ok(s)
    }

    fn fragment(&mut self, name: &'a str) -> Result<Summary, Refusal> {
        match self.fragments.get(name) {
            Some(State::Done(s)) => return Ok(*s),
            Some(State::Visiting) => {
                return Err(Refusal::Invalid(format!("the fragment `{name}` spreads itself (directly or through others)")));
            }
            None => {}
        }
        // An unknown fragment costs nothing here; validation reports it.
        let Some((key, def)) = self.doc.fragments.get_key_value(name) else { return Ok(Summary::default()) };
        let key = key.as_str();
        self.fragments.insert(key, State::Visiting);
        let s = self.set(&def.node.selection_set)?;
        self.fragments.insert(key, State::Done(s));
        Ok(s)
    }
}

/// Nodes written in a selection set (not expanded).
fn nodes(set: &SelectionSet) -> usize {
    set.items.iter().fold(0usize, |n, sel| {
        let own = 1 + sel.node.directives().iter().map(|d| 1 + d.node.arguments.len()).sum::<usize>();
        let inner = match &sel.node {
            Selection::Field(f) => f.node.arguments.len() + nodes(&f.node.selection_set.node),
            Selection::InlineFragment(i) => nodes(&i.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        };
        n.saturating_add(own).saturating_add(inner)
    })
}

/// Checks `doc` against `limits` in time linear in its size.
///
/// # Errors
/// [`Refusal::Limit`] naming the limit passed; [`Refusal::Invalid`] for a fragment cycle.
pub fn check(doc: &ExecutableDocument, limits: &DocumentLimits) -> Result<(), Refusal> {
    let operations: Vec<&Positioned<async_graphql::parser::types::OperationDefinition>> = match &doc.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(ops) => ops.values().collect(),
    };
    let mut written = doc.fragments.len();
    for op in &operations {
        written = written.saturating_add(nodes(&op.node.selection_set.node)).saturating_add(op.node.variable_definitions.len());
    }
    for f in doc.fragments.values() {
        written = written.saturating_add(nodes(&f.node.selection_set.node));
    }
    if written > limits.max_nodes {
        return Err(Refusal::Limit(format!("the document has {written} nodes; the limit is {}", limits.max_nodes)));
    }
    let mut walk = Walk { doc, fragments: HashMap::new() };
    let mut total = Summary::default();
    for op in &operations {
        let s = walk.set(&op.node.selection_set)?;
        total.cost = total.cost.saturating_add(s.cost);
        total.aliases = total.aliases.saturating_add(s.aliases);
        total.depth = total.depth.max(s.depth);
    }
    // Fragments no operation uses are validated too: summarise them (and find their cycles).
    for name in doc.fragments.keys() {
        walk.fragment(name.as_str())?;
    }
    if total.depth > limits.max_depth {
        return Err(Refusal::Limit(format!("the query is nested {} fields deep; the limit is {}", total.depth, limits.max_depth)));
    }
    if total.cost > limits.max_cost {
        let shown = if total.cost == usize::MAX { "an unbounded number of".to_owned() } else { total.cost.to_string() };
        return Err(Refusal::Limit(format!(
            "the query makes {shown} selections once its fragments are expanded; the limit is {}",
            limits.max_cost
        )));
    }
    if total.aliases > limits.max_aliases {
        return Err(Refusal::Limit(format!("the query uses {} aliases; the limit is {}", total.aliases, limits.max_aliases)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    const LIMITS: DocumentLimits = DocumentLimits { max_depth: 15, max_cost: 2000, max_aliases: 100, max_nodes: 5000 };

    fn chain(levels: usize) -> String {
        let mut q = String::from("query { leads(first: 1) { ...F1 } }\n");
        for i in 1..levels {
            q.push_str(&format!("fragment F{i} on Lead {{ id ...F{n} ...F{n} }}\n", n = i + 1));
        }
        q.push_str(&format!("fragment F{levels} on Lead {{ id }}\n"));
        q
    }

    fn run(q: &str) -> Result<(), Refusal> {
        let doc = async_graphql::parser::parse_query(q).map_err(|e| Refusal::Invalid(e.to_string()))?;
        check(&doc, &LIMITS)
    }

    #[test]
    fn fragment_chains_are_refused_by_their_expanded_cost() {
        for levels in [25, 30, 40, 64] {
            let e = run(&chain(levels)).unwrap_err();
            assert!(matches!(&e, Refusal::Limit(m) if m.contains("once its fragments are expanded")), "{levels}: {e}");
        }
        // Short chains expand within the budget and pass.
        assert_eq!(run(&chain(5)), Ok(()));
    }

    #[test]
    fn ordinary_queries_pass() {
        let q = "query Q($w: LeadWhereInput) { leads(where: $w, first: 10) { id name account { name contacts { email } } } \
                 leadsConnection { edges { node { ...L } } } } fragment L on Lead { id status owner { name } }";
        assert_eq!(run(q), Ok(()));
    }

    #[test]
    fn depth_counts_fields_through_fragments() {
        let mut q = String::from("{ a ");
        for _ in 0..15 {
            q.push_str("{ a ");
        }
        q.push_str(&"}".repeat(16));
        // 16 nested fields.
        assert!(matches!(run(&q), Err(Refusal::Limit(m)) if m.contains("16 fields deep")));
        let q = "{ a { ...F } } fragment F on T { b { c { d } } }";
        let doc = async_graphql::parser::parse_query(q).unwrap();
        let shallow = DocumentLimits { max_depth: 3, ..LIMITS };
        assert!(matches!(check(&doc, &shallow), Err(Refusal::Limit(m)) if m.contains("4 fields deep")));
        assert_eq!(check(&doc, &DocumentLimits { max_depth: 4, ..LIMITS }), Ok(()));
    }

    #[test]
    fn aliases_are_counted_expanded() {
        let q = "{ ...A ...A } fragment A on Query { a1: leads { id } a2: leads { id } }";
        let doc = async_graphql::parser::parse_query(q).unwrap();
        assert_eq!(check(&doc, &DocumentLimits { max_aliases: 4, ..LIMITS }), Ok(()));
        assert!(matches!(check(&doc, &DocumentLimits { max_aliases: 3, ..LIMITS }), Err(Refusal::Limit(m)) if m.contains("4 aliases")));
    }

    #[test]
    fn cycles_and_unused_fragments_are_seen() {
        assert!(matches!(run("{ ...A } fragment A on Query { ...A ...A }"), Err(Refusal::Invalid(_))));
        assert!(matches!(run("{ id } fragment A on Query { ...B } fragment B on Query { ...A }"), Err(Refusal::Invalid(_))));
    }

    #[test]
    fn written_nodes_are_bounded() {
        let q = format!("{{ {} }}", (0..6000).map(|i| format!("f{i}")).collect::<Vec<_>>().join(" "));
        assert!(matches!(run(&q), Err(Refusal::Limit(m)) if m.contains("nodes")));
    }
}
