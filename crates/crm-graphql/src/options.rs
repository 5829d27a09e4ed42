//! The limits and switches of the API.

/// Limits and switches of a generated schema.
#[derive(Debug, Clone, Copy)]
pub struct SchemaOptions {
    /// Deepest selection accepted (`LIMIT_EXCEEDED` beyond).
    pub max_depth: usize,
    /// Most fields one request may select, counted over the whole document (`LIMIT_EXCEEDED`
    /// beyond).
    pub max_complexity: usize,
    /// Most aliased fields one request may use, fragments expanded (`LIMIT_EXCEEDED` beyond).
    pub max_aliases: usize,
    /// Most nodes (selections, arguments, directives, fragments) a request's document may be
    /// written with, fragments not expanded (`LIMIT_EXCEEDED` beyond).
    pub max_nodes: usize,
    /// Whether introspection is served.
    pub introspection: bool,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        SchemaOptions { max_depth: 15, max_complexity: 2000, max_aliases: 100, max_nodes: 5000, introspection: true }
    }
}

impl SchemaOptions {
    /// The limits the document guard applies before validation ([`crate::guard`]).
    #[must_use]
    pub fn document_limits(&self) -> crate::guard::DocumentLimits {
        crate::guard::DocumentLimits {
            max_depth: self.max_depth,
            max_cost: self.max_complexity,
            max_aliases: self.max_aliases,
            max_nodes: self.max_nodes,
        }
    }
}
