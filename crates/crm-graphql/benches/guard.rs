#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The document guard ([`crm_graphql::guard`]) on hostile and ordinary documents: parse plus the
//! guard, which is all the server does before refusing one. The fragment chains (each fragment
//! spreads the next twice, 2^n selections expanded) must be refused in well under 10 ms each at
//! any length; an ordinary query must cost the guard next to nothing beside its parse.
//!
//! `cargo bench -p crm-graphql --bench guard`. `parse_only` against `parse_and_guard` on the
//! ordinary query is the guard's cost next to the parse it always follows (same run).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use crm_graphql::SchemaOptions;
use crm_graphql::guard::{Refusal, check};

fn chain(levels: usize) -> String {
    let mut q = String::from("query { leads(first: 1) { ...F1 } }\n");
    for i in 1..levels {
        q.push_str(&format!("fragment F{i} on Lead {{ id ...F{n} ...F{n} }}\n", n = i + 1));
    }
    q.push_str(&format!("fragment F{levels} on Lead {{ id }}\n"));
    q
}

const ORDINARY: &str = "query Q($w: LeadWhereInput) { leads(where: $w, first: 10, orderBy: createdAt_DESC) { id name email status score \
                        owner { name } account { name contacts(first: 5) { email } } } leadsConnection(first: 20) \
                        { edges { cursor node { ...L } } pageInfo { hasNextPage endCursor } } } \
                        fragment L on Lead { id status tags owner { name email } }";

fn bench(c: &mut Criterion) {
    let limits = SchemaOptions::default().document_limits();
    let mut g = c.benchmark_group("guard");
    for levels in [25usize, 30, 40] {
        let q = chain(levels);
        // The refusal is the point: check it once outside the timing.
        let doc = async_graphql::parser::parse_query(&q).unwrap();
        assert!(matches!(check(&doc, &limits), Err(Refusal::Limit(_))));
        g.bench_with_input(BenchmarkId::new("fragment_chain_refused", levels), &q, |b, q| {
            b.iter(|| {
                let doc = async_graphql::parser::parse_query(black_box(q)).unwrap();
                black_box(check(&doc, &limits)).unwrap_err()
            });
        });
        // The guard alone on the parsed document: what it adds to the parse.
        g.bench_with_input(BenchmarkId::new("fragment_chain_guard_only", levels), &doc, |b, doc| {
            b.iter(|| black_box(check(black_box(doc), &limits)).unwrap_err());
        });
    }
    let doc = async_graphql::parser::parse_query(ORDINARY).unwrap();
    check(&doc, &limits).unwrap();
    g.bench_function("ordinary_parse_only", |b| b.iter(|| async_graphql::parser::parse_query(black_box(ORDINARY)).unwrap()));
    g.bench_function("ordinary_parse_and_guard", |b| {
        b.iter(|| {
            let doc = async_graphql::parser::parse_query(black_box(ORDINARY)).unwrap();
            check(&doc, &limits).unwrap();
            doc
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
