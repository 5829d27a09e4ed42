#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Writing page rows from their text columns (`crm_orm::row`): a 20-row page of Q1's shape (five
//! scalars), and 20 accounts each with five contacts as PostgreSQL writes them (a text array of
//! values per row), the shape of the load benchmark's Q2.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use crm_orm::row::{Cell, RowShape};

fn lead_shape() -> RowShape {
    let mut s = RowShape::default();
    for (key, cell) in [("id", Cell::Text), ("name", Cell::Text), ("email", Cell::Text), ("status", Cell::Text), ("createdAt", Cell::Text)]
    {
        s.column(key, cell);
    }
    s
}

fn account_shape() -> RowShape {
    let mut contact = RowShape::default();
    for key in ["id", "firstName", "lastName", "email"] {
        contact.column(key, Cell::Text);
    }
    let mut s = RowShape::default();
    s.column("id", Cell::Text);
    s.column("name", Cell::Text);
    s.column("contacts", Cell::Rows(Box::new(contact)));
    s
}

fn bench(c: &mut Criterion) {
    let shape = lead_shape();
    let lead =
        ["0191f5a2-7c1e-7a3b-9d4e-5f6a7b8c9d0e", "Ada Lovelace", "ada@analytical.example", "QUALIFIED", "2026-11-30T09:15:02.123456Z"];
    c.bench_function("row_write/20 leads (5 scalars)", |b| {
        b.iter(|| {
            let mut n = 0;
            for _ in 0..20 {
                n += shape.write(black_box(lead).iter().map(|v| Some(*v))).unwrap().len();
            }
            n
        });
    });
    let shape = account_shape();
    let contacts = (0..5)
        .map(|i| format!("{{0191f5a2-7c1e-7a3b-9d4e-5f6a7b8c9d0{i},Ada,\"Lovelace, Countess\",ada{i}@analytical.example}}"))
        .collect::<Vec<_>>()
        .join(",");
    let contacts = format!("{{{contacts}}}");
    let account = ["0191f5a2-7c1e-7a3b-9d4e-5f6a7b8c9d0e", "Analytical Engines Ltd", contacts.as_str()];
    c.bench_function("row_write/20 accounts with 5 contacts (text arrays)", |b| {
        b.iter(|| {
            let mut n = 0;
            for _ in 0..20 {
                n += shape.write(black_box(account).iter().map(|v| Some(*v))).unwrap().len();
            }
            n
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
