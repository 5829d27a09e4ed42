#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! Snapshots of every statement the store sends besides reads, on both dialects, with their
//! bound parameters: writes, the audit log, the outbox and the consumers' positions, webhook
//! deliveries, the tenant registry, metadata, stage statistics, locks and migration
//! bookkeeping. No database: this is the pure statement layer (`crm_orm::sql`).
//!
//! Every statement is built twice, for a tenant and for another tenant (with other writers),
//! and checked, not only snapshotted:
//! - the SQL text is the same for both: nothing of a tenant or a writer is written into it;
//! - placeholders are numbered consistently with the values;
//! - a tenant's statement compares `org_id` only with a parameter bound to its own tenant (or,
//!   for an insert, binds it);
//! - no user-supplied string (names, values, actors, errors, stages) appears in the SQL text.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use crm_model::standard::standard_catalog;
use crm_model::{Catalog, Extension, FieldDef as F, Model, ModelDef, OrgId, RoleName, Value};
use crm_orm::sql::{Builder, Built, audit, ddl, deliveries, events, locks, metadata, search, stages, tenants, write};
use crm_orm::{Access, Attempt, Definition, Dialect, EventKind, Filter, Op, Policy, Principal};
use render::rendered;
use serde_json::json;
use uuid::Uuid;

mod render;

const DIALECTS: [(Dialect, &str); 2] = [(Dialect::Sqlite, "sqlite"), (Dialect::Postgres, "postgres")];

/// One of the two tenants each statement is built for, with its writer.
struct Tenant {
    org: OrgId,
    actor: &'static str,
}

fn tenants_() -> [Tenant; 2] {
    [
        Tenant { org: OrgId::new("org-a-1111").unwrap(), actor: "user-a-admin" },
        Tenant { org: OrgId::new("org-b-2222").unwrap(), actor: "user-b-sales" },
    ]
}

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T09:30:00Z").unwrap().with_timezone(&Utc)
}

fn id(n: u8) -> Uuid {
    Uuid::parse_str(&format!("0190f5a2-7c1e-7a3b-9d4e-5f6a7b8c9d{n:02x}")).unwrap()
}

/// The standard catalog with custom fields (a decimal and a restrict reference on `Lead`) and a
/// custom object (`Gadget`, in the shared records table).
fn catalog() -> Catalog {
    let ext = Extension {
        objects: vec![ModelDef::new("Gadget").field(F::text("label")).field(F::int("size"))],
        fields: vec![("Lead".to_owned(), F::decimal("budget")), ("Lead".to_owned(), F::relation("partner", "Account"))],
    };
    standard_catalog().unwrap().extend(&ext).unwrap()
}

fn model<'c>(cat: &'c Catalog, name: &str) -> &'c Arc<Model> {
    cat.model(name).unwrap()
}

/// Statements of one concept, rendered per dialect into one snapshot each.
struct Sheet {
    name: &'static str,
    texts: [String; 2],
}

impl Sheet {
    fn new(name: &'static str) -> Self {
        Sheet { name, texts: [String::new(), String::new()] }
    }

    /// A statement of a tenant: built for both tenants, checked, snapshotted for the first.
    /// `user` lists the user-supplied strings it carries besides the tenant and the writer.
    fn tenant(&mut self, title: &str, user: &[&str], build: impl Fn(Dialect, &Tenant) -> Built) {
        self.case(title, true, user, |d, t| Some(build(d, t)));
    }

    /// A statement of platform work (no tenant, or every tenant), or `None` on a backend that
    /// has none of it.
    fn platform(&mut self, title: &str, user: &[&str], build: impl Fn(Dialect, &Tenant) -> Option<Built>) {
        self.case(title, false, user, build);
    }

    fn case(&mut self, title: &str, tenant: bool, user: &[&str], build: impl Fn(Dialect, &Tenant) -> Option<Built>) {
        for (i, (d, _)) in DIALECTS.into_iter().enumerate() {
            let [a, b] = tenants_();
            let (Some(first), second) = (build(d, &a), build(d, &b)) else {
                assert!(build(d, &b).is_none(), "{title}: a statement for one tenant only");
                self.texts[i].push_str(&format!("-- {title}\n(none on this backend)\n\n"));
                continue;
            };
            let second = second.unwrap();
            let (ra, rb) = (rendered(d, first), rendered(d, second));
            assert_eq!(ra.sql, rb.sql, "{title}: the SQL differs between tenants");
            for (r, t) in [(&ra, &a), (&rb, &b)] {
                r.check_placeholders();
                if tenant {
                    r.check_tenant_bound(t.org.as_str());
                }
                let mut strings: Vec<String> = user.iter().map(|s| (*s).to_owned()).collect();
                strings.extend([t.org.as_str().to_owned(), t.actor.to_owned()]);
                r.check_no_inline(&strings);
            }
            self.texts[i].push_str(&format!("-- {title}\n{}\n", ra.text()));
        }
    }

    fn snapshot(self) {
        for (i, (_, dn)) in DIALECTS.into_iter().enumerate() {
            insta::assert_snapshot!(format!("{}__{dn}", self.name), self.texts[i]);
        }
    }
}

/// The access of `t`'s writer with `role`, under the default roles.
fn access_of(cat: &Catalog, t: &Tenant, role: &str) -> Access {
    let p = Principal { sub: t.actor.to_owned(), org_id: t.org.clone(), roles: vec![RoleName::new(role).unwrap()] };
    crm_orm::access(cat, &Policy::default_roles(), &p)
}

fn stamp(t: &Tenant) -> write::Stamp<'_> {
    write::Stamp { org: &t.org, actor: t.actor, now: at() }
}

fn sets(d: Dialect, m: &Model, values: &[(&str, Value)]) -> write::Sets {
    let mut sets = write::Sets::default();
    for (name, v) in values {
        sets.add(d, m.field(name).unwrap(), v);
    }
    sets
}

#[test]
fn writes() {
    let cat = catalog();
    let (lead, opp, contact, activity, gadget) =
        (model(&cat, "Lead"), model(&cat, "Opportunity"), model(&cat, "Contact"), model(&cat, "Activity"), model(&cat, "Gadget"));
    let mut s = Sheet::new("writes");
    let name = "O'Brien; DROP TABLE lead --";
    s.tenant("insert a lead with a custom decimal", &[name, "12.50"], |d, t| {
        let v = sets(
            d,
            lead,
            &[("name", Value::Text(name.into())), ("status", Value::Text("NEW".into())), ("budget", Value::Decimal("12.50".into()))],
        );
        write::insert(d, lead, &stamp(t), id(1), v).unwrap()
    });
    s.tenant("insert an opportunity with money", &["1250.00", "EUR"], |d, t| {
        let v = sets(
            d,
            opp,
            &[("name", Value::Text("Deal".into())), ("amount", Value::Money { amount: "1250.00".into(), currency: "EUR".into() })],
        );
        write::insert(d, opp, &stamp(t), id(2), v).unwrap()
    });
    s.tenant("insert a custom object's record", &["gizmo"], |d, t| {
        let v = sets(d, gadget, &[("label", Value::Text("gizmo".into())), ("size", Value::Int(3))]);
        write::insert(d, gadget, &stamp(t), id(3), v).unwrap()
    });
    s.tenant("update a lead at version 4 (custom value patched in place)", &[name], |d, t| {
        let v = sets(d, lead, &[("name", Value::Text(name.into())), ("budget", Value::Decimal("99.90".into()))]);
        write::update(d, lead, &stamp(t), &[id(1)], v, Some(4))
    });
    s.tenant("the searchable text of leads after an update changed it", &[], |d, t| search::unfolded(d, lead, &t.org, &[id(1), id(2)]));
    s.tenant("their search column, folded by the store", &["o'brien", "zoe"], |d, t| {
        search::fill(d, lead, &t.org, &[(id(1), "o'brien".into()), (id(2), "zoe".into())]).unwrap()
    });
    s.tenant("update a batch of leads", &[], |d, t| {
        let v = sets(d, lead, &[("score", Value::Int(70))]);
        write::update(d, lead, &stamp(t), &[id(1), id(2)], v, None)
    });
    let via = contact.field("account").unwrap();
    s.tenant("detach an account's contacts but two", &[], |d, t| write::detach_others(d, contact, via, &stamp(t), id(9), &[id(4), id(5)]));
    s.tenant("detach every contact of an account", &[], |d, t| write::detach_others(d, contact, via, &stamp(t), id(9), &[]));
    s.tenant("detach one contact", &[], |d, t| write::detach(d, contact, via, &stamp(t), id(9), id(4)));
    s.tenant("clear references to deleted contacts", &[], |d, t| {
        write::clear_references(d, lead, lead.field("contact").unwrap(), &stamp(t), &[id(4), id(5)])
    });
    s.tenant("clear polymorphic references to a deleted lead", &[], |d, t| {
        write::clear_polymorphic(d, activity, activity.field("subject").unwrap(), &stamp(t), &lead.name, &[id(1)])
    });
    s.tenant("count custom references to accounts being deleted", &[], |d, t| {
        write::count_references(d, lead, lead.field("partner").unwrap(), &t.org, &[id(9)])
    });
    s.tenant("move to the trash", &[], |d, t| write::set_deleted(d, lead, &stamp(t), &[id(1)], true));
    s.tenant("restore from the trash", &[], |d, t| write::set_deleted(d, gadget, &stamp(t), &[id(3)], false));
    s.tenant("destroy at version 2", &[], |d, t| write::delete(d, lead, &t.org, id(1), 2));
    s.tenant("destroy a custom object's record", &[], |d, t| write::delete(d, gadget, &t.org, id(3), 1));
    s.platform("lock a record", &[], |d, t| write::lock(d, lead, &t.org, id(1)));
    s.tenant("audit entries of a delete", &["delete"], |d, t| {
        audit::records(d, &stamp(t), &lead.name, &[id(1), id(2)], "delete").unwrap().unwrap()
    });
    s.tenant("audit entry of a metadata change", &["metadata.createField", "note: O'Brien"], |d, t| {
        audit::change(d, &stamp(t), "metadata.createField", "Lead", json!({ "field": "budget", "note": "note: O'Brien" })).unwrap()
    });
    s.tenant("the audit log of leads", &[], |d, t| d.build(&audit::log(d, &t.org, Some(&lead.name), 20).unwrap()));
    assert!(audit::records(Dialect::Sqlite, &stamp(&tenants_()[0]), &lead.name, &[], "delete").unwrap().is_none(), "no ids, no statement");
    s.snapshot();
}

#[test]
fn outbox() {
    let cat = catalog();
    let lead = model(&cat, "Lead");
    let mut s = Sheet::new("outbox");
    s.tenant("append two events", &["O'Brien"], |d, t| {
        let new = [
            events::NewEvent {
                id: id(20),
                kind: EventKind::Created,
                model: lead.name.clone(),
                record: id(1),
                payload: json!({ "before": null, "after": { "name": "O'Brien" } }),
            },
            events::NewEvent {
                id: id(21),
                kind: EventKind::Destroyed,
                model: lead.name.clone(),
                record: id(2),
                payload: json!({ "before": { "name": "x" }, "after": null }),
            },
        ];
        events::append(d, &t.org, t.actor, at(), &new).unwrap().remove(0)
    });
    s.tenant("the tenant's head after an append (PostgreSQL: in the same statement; SQLite: a second one)", &[], |d, t| {
        let new = [events::NewEvent {
            id: id(20),
            kind: EventKind::Created,
            model: lead.name.clone(),
            record: id(1),
            payload: json!({ "before": null, "after": {} }),
        }];
        let mut all = events::append(d, &t.org, t.actor, at(), &new).unwrap();
        if d == Dialect::Postgres { all.remove(0) } else { all.remove(1) }
    });
    s.tenant("a record's events, naming the tenant", &[], |d, t| events::of_record(d, Some(&t.org), &lead.name, id(1), 50).unwrap());
    s.platform("a record's events, by row-level security alone", &[], |d, _| {
        Some(events::of_record(d, None, &lead.name, id(1), 50).unwrap())
    });
    s.tenant("one event by position", &[], |d, t| events::at(d, &t.org, 42).unwrap());
    s.platform("the tenants a consumer has not caught up with, every tenant", &["tagging"], |d, _| {
        Some(events::pending_tenants(d, "tagging", &[], "", 32))
    });
    s.platform("the tenants a consumer has not caught up with, some tenants, after one", &["webhooks", "org-c-3333", "org-b"], |d, t| {
        Some(events::pending_tenants(d, "webhooks", &[t.org.to_string(), "org-c-3333".to_owned()], "org-b", 32))
    });
    s.tenant("a tenant's next events after a position", &[], |d, t| events::pending_of(d, t.org.as_str(), 41, 100).unwrap());
    s.tenant("how far a consumer is behind in a tenant", &[], |d, t| events::lag_in(d, t.org.as_str(), 41).unwrap());
    s.platform("the front of the outbox (retention)", &[], |d, _| Some(events::front(d, 41, 1000).unwrap()));
    s.platform("the consumers active since a time (retention)", &[], |d, _| Some(events::active_consumers(d, at())));
    s.platform("consumers' positions in tenants (retention)", &["nats", "org-c-3333"], |d, _| {
        Some(events::positions(d, &["nats".to_owned()], &["org-c-3333".to_owned()]).unwrap())
    });
    s.platform("delete passed events (retention)", &[], |d, _| events::purge(d, &[3, 4, 5]));
    s.platform("delete finished deliveries (retention)", &[], |d, _| Some(deliveries::purge_finished(d, at(), 1000)));
    s.tenant("a consumer's position, claimed (another holder skipped)", &["nats"], |d, t| events::cursor_claim(d, "nats", &t.org));
    s.tenant("a consumer's position, created", &["routing"], |d, t| events::cursor_init(d, "routing", &t.org, at()).unwrap());
    s.tenant("a consumer's position, locked", &["routing"], |d, t| events::cursor_position(d, "routing", &t.org));
    s.tenant("a consumer's position, advanced (never back)", &["routing"], |d, t| events::cursor_advance(d, "routing", &t.org, 42, at()));
    s.tenant("whether a record is visible, live or in the trash", &[], |d, t| {
        let access = access_of(&cat, t, "admin");
        let side = |trash: bool| {
            Builder::new(d, &cat, &access, crm_orm::Limits::default())
                .in_trash(trash)
                .visible_ids(lead, &Filter::ids(&[id(1)]).unwrap(), Op::Read)
                .unwrap()
        };
        events::visible(d, side(false), side(true))
    });
    assert!(events::append(Dialect::Sqlite, &tenants_()[0].org, "x", at(), &[]).unwrap().is_empty(), "no events, no statement");
    s.snapshot();
}

#[test]
fn deliveries() {
    let cat = catalog();
    let hooks = model(&cat, "Webhook");
    let mut s = Sheet::new("deliveries");
    s.tenant("queue a delivery", &["lead.created"], |d, t| {
        deliveries::enqueue(d, &t.org, id(30), id(31), 42, "lead.created", at()).unwrap()
    });
    s.tenant("a tenant's deliveries of one webhook", &[], |d, t| {
        let access = access_of(&cat, t, "admin");
        let visible = Builder::new(d, &cat, &access, crm_orm::Limits::default()).visible_ids(hooks, &Filter::True, Op::Read).unwrap();
        d.build(&deliveries::list(d, visible, Some(&t.org), Some(id(31)), 20).unwrap())
    });
    s.platform("deliveries due, every tenant", &[], |d, _| Some(deliveries::due(d, at(), 50, &[])));
    s.platform("deliveries due, some tenants", &[], |d, t| Some(deliveries::due(d, at(), 50, &[t.org.to_string()])));
    s.platform("lease claimed deliveries", &[], |d, _| Some(deliveries::lease(d, &[id(30), id(32)], at())));
    s.platform("read claimed deliveries", &[], |d, _| Some(deliveries::claimed(d, &[id(30), id(32)]).unwrap()));
    s.platform("an attempt delivered", &[], |d, _| Some(deliveries::record_attempt(d, id(30), &Attempt::Delivered { status: 204 }, at())));
    let error = "connection refused by O'Brien's proxy";
    s.platform("an attempt failed, retried", &[error], |d, _| {
        let failed = Attempt::Failed { status: Some(503), error: error.to_owned(), retry_at: Some(at()) };
        Some(deliveries::record_attempt(d, id(30), &failed, at()))
    });
    s.platform("an attempt failed, given up", &[error], |d, _| {
        let failed = Attempt::Failed { status: None, error: error.to_owned(), retry_at: None };
        Some(deliveries::record_attempt(d, id(30), &failed, at()))
    });
    s.platform("postpone a delivery", &[], |d, _| Some(deliveries::postpone(d, id(30), at())));
    s.snapshot();
}

#[test]
fn tenancy_and_metadata() {
    let cat = catalog();
    let lead = model(&cat, "Lead");
    let mut s = Sheet::new("tenancy_and_metadata");
    let parent = OrgId::new("org-parent-9999").unwrap();
    s.tenant("register a tenant under a parent", &["org-parent-9999"], |d, t| tenants::register(d, &t.org, Some(&parent), at()).unwrap());
    s.tenant("register a tenant", &[], |d, t| tenants::register(d, &t.org, None, at()).unwrap());
    s.tenant("move a tenant under a parent", &["org-parent-9999"], |d, t| tenants::set_parent(d, &t.org, &parent));
    s.platform("a tenant's descendants", &[], |d, t| Some(tenants::descendants(d, &t.org)));
    s.tenant("a tenant's metadata version", &[], |d, t| tenants::metadata_version(d, &t.org));
    s.platform("lock a tenant's metadata", &[], |d, t| tenants::lock_metadata(d, &t.org));
    s.tenant("bump a tenant's metadata version", &[], |d, t| tenants::bump_metadata_version(d, &t.org));
    s.platform("set a transaction's tenant", &["org-c-3333"], |d, t| {
        tenants::session(d, true, &t.org, &[OrgId::new("org-c-3333").unwrap()])
    });
    s.platform("set a session's tenant", &[], |d, t| tenants::session(d, false, &t.org, &[]));
    s.platform("flag platform work", &[], |d, _| tenants::platform(d));
    s.platform("the role bypasses row-level security", &[], |d, _| (d == Dialect::Postgres).then(tenants::role_bypasses_rls));
    s.tenant("a tenant's definitions", &[], |d, t| metadata::definitions(d, &t.org).unwrap());
    let def = Definition {
        kind: "field".into(),
        model: "Lead".into(),
        name: "budget".into(),
        definition: json!({ "name": "budget", "type": "decimal", "label": "O'Brien's budget" }),
        active: true,
        position: 3,
        updated_at: String::new(),
        updated_by: None,
    };
    s.tenant("store a definition", &["O'Brien's budget", "field"], |d, t| metadata::upsert(d, &stamp(t), &def).unwrap());
    s.tenant("remove a definition", &["field"], |d, t| metadata::remove(d, &t.org, &def));
    s.tenant("a custom object's records", &["Gadget"], |d, t| metadata::object_records(d, &t.org, "Gadget"));
    s.tenant("purge a custom field of a base model", &[], |d, t| metadata::purge_values(d, &t.org, lead.table.as_str(), None, "budget"));
    s.tenant("purge a custom object's field", &["Gadget"], |d, t| {
        metadata::purge_values(d, &t.org, crm_model::RECORDS_TABLE, Some("Gadget"), "size")
    });
    s.tenant("purge a custom field's history", &[], |d, t| metadata::purge_history(d, &t.org, "Lead", "budget"));
    s.snapshot();
}

#[test]
fn stages_locks_and_migrations() {
    let cat = catalog();
    let lead = model(&cat, "Lead");
    let mut s = Sheet::new("stages_locks_and_migrations");
    let order = ["NEW", "CONTACTED", "QUALIFIED"];
    let live = |d: Dialect, t: &Tenant| {
        let access = access_of(&cat, t, "sales");
        Builder::new(d, &cat, &access, crm_orm::Limits::default()).visible_ids(lead, &Filter::True, Op::Read).unwrap()
    };
    s.tenant("furthest stage per record", &order, |d, t| d.build(&stages::furthest(d, &t.org, lead, "status", &order, live(d, t))));
    s.tenant("stays per stage", &[], |d, t| d.build(&stages::stays(d, &t.org, lead, "status", live(d, t)).unwrap()));
    s.platform("the migration lock", &[], |d, _| locks::migration(d));
    s.platform("a tenant's lock", &[], |d, t| locks::key(d, t.org.as_str()));
    s.platform("the columns of a table", &[], |d, _| Some(ddl::list_columns(d, "lead")));
    s.platform("the migrations applied", &[], |d, _| Some(ddl::migrations_applied(d)));
    s.platform("the tables migrated", &[], |d, _| Some(ddl::migrated_tables(d)));
    s.platform("record a table migrated", &[], |d, _| Some(ddl::record_migrated(d, lead, "0123456789abcdef", at()).unwrap()));
    s.snapshot();
}
