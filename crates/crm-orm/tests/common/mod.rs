//! Test harness: the same tests run on every database of the test kit (SQLite always, PostgreSQL
//! when configured), through the store as several principals.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use crm_model::standard::standard_catalog;
use crm_model::{Catalog, ModelName};
use crm_orm::{
    Data, Filter, Op, OrderBy, OrmError, Page, PageResult, Policy, Principal, Read, Selection, Store, Unique, Write, WriteResult, authorize,
};
use serde_json::{Value as Json, json};

pub use crm_test_kit::{Backend, org, principal};

pub async fn backends() -> Vec<Backend> {
    crm_test_kit::backends(Arc::new(standard_catalog().unwrap())).await
}

pub struct Client<'a> {
    pub store: &'a Store,
    pub policy: Policy,
    pub p: Principal,
}

pub fn client(b: &Backend, p: Principal) -> Client<'_> {
    Client { store: &b.store, policy: Policy::default_roles(), p }
}

impl Client<'_> {
    pub fn cat(&self) -> &Catalog {
        self.store.catalog()
    }
    fn model(&self, m: &str) -> Arc<crm_model::Model> {
        self.cat().model(m).unwrap_or_else(|| panic!("model {m}")).clone()
    }

    pub async fn write_sel(&self, w: Write, op: Op, sel: &Selection) -> Result<WriteResult, OrmError> {
        let model = w.model().clone();
        let s = authorize(self.cat(), &self.policy, &self.p, &model, op, w)?;
        self.store.write(&s, sel).await
    }

    async fn one(&self, w: Write, op: Op) -> Result<Option<Json>, OrmError> {
        let m = self.model(w.model().as_str());
        match self.write_sel(w, op, &Selection::scalars(&m)).await? {
            WriteResult::One(j) => Ok(j),
            WriteResult::Many(_) => panic!("expected one"),
        }
    }

    pub async fn create(&self, m: &str, data: Json) -> Result<Json, OrmError> {
        let model = self.model(m);
        let data = Data::parse(self.cat(), &model, &data, "data")?;
        Ok(self.one(Write::Create { model: model.name.clone(), data }, Op::Create).await?.unwrap_or(Json::Null))
    }

    pub async fn update(&self, m: &str, target: Json, data: Json, expected: Option<i64>) -> Result<Json, OrmError> {
        let model = self.model(m);
        let target = Unique::parse(&model, &target, "where")?;
        let data = Data::parse(self.cat(), &model, &data, "data")?;
        Ok(self
            .one(Write::Update { model: model.name.clone(), target, data, expected_version: expected }, Op::Update)
            .await?
            .unwrap_or(Json::Null))
    }

    pub async fn delete(&self, m: &str, target: Json, expected: Option<i64>) -> Result<Option<Json>, OrmError> {
        let model = self.model(m);
        let target = Unique::parse(&model, &target, "where")?;
        self.one(Write::Delete { model: model.name.clone(), target, expected_version: expected }, Op::Delete).await
    }

    /// Removes a record for good (the delete that cascades and clears references).
    pub async fn destroy(&self, m: &str, target: Json) -> Result<Option<Json>, OrmError> {
        let model = self.model(m);
        let target = Unique::parse(&model, &target, "where")?;
        self.one(Write::Destroy { model: model.name.clone(), target }, Op::Destroy).await
    }

    pub async fn upsert(&self, m: &str, target: Json, create: Json, update: Json) -> Result<Json, OrmError> {
        let model = self.model(m);
        let target = Unique::parse(&model, &target, "where")?;
        let create = Data::parse(self.cat(), &model, &create, "create")?;
        let update = Data::parse(self.cat(), &model, &update, "update")?;
        Ok(self.one(Write::Upsert { model: model.name.clone(), target, create, update }, Op::Update).await?.unwrap_or(Json::Null))
    }

    pub async fn update_many(&self, m: &str, filter: Json, data: Json) -> Result<PageResult, OrmError> {
        let model = self.model(m);
        let filter = Filter::parse(self.cat(), &model, &filter)?;
        let data = Data::parse(self.cat(), &model, &data, "data")?;
        let w = Write::UpdateMany {
            model: model.name.clone(),
            filter,
            order: vec![],
            page: Page { first: Some(100), ..Page::default() },
            data,
        };
        match self.write_sel(w, Op::Update, &Selection::scalars(&model)).await? {
            WriteResult::Many(p) => Ok(p),
            WriteResult::One(_) => panic!("expected many"),
        }
    }

    pub async fn delete_many(&self, m: &str, filter: Json) -> Result<PageResult, OrmError> {
        let model = self.model(m);
        let filter = Filter::parse(self.cat(), &model, &filter)?;
        let w = Write::DeleteMany { model: model.name.clone(), filter, order: vec![], page: Page { first: Some(100), ..Page::default() } };
        match self.write_sel(w, Op::Delete, &Selection::scalars(&model)).await? {
            WriteResult::Many(p) => Ok(p),
            WriteResult::One(_) => panic!("expected many"),
        }
    }

    pub async fn read(&self, read: Read) -> Result<PageResult, OrmError> {
        let model: ModelName = read.model.clone();
        let s = authorize(self.cat(), &self.policy, &self.p, &model, Op::Read, read)?;
        self.store.read(&s).await
    }

    pub async fn list(&self, m: &str, filter: Json, order: &[&str], page: Page) -> Result<PageResult, OrmError> {
        let model = self.model(m);
        let mut read = Read::new(&model);
        read.filter = Filter::parse(self.cat(), &model, &filter)?;
        read.order = order.iter().map(|o| OrderBy::parse(&model, o)).collect::<Result<_, _>>()?;
        read.page = page;
        read.count = true;
        self.read(read).await
    }

    /// Values of `field` of all rows matching `filter`, ordered by `order` (first 100).
    pub async fn values(&self, m: &str, filter: Json, order: &[&str], field: &str) -> Vec<Json> {
        let p = self.list(m, filter, order, Page { first: Some(100), ..Page::default() }).await.unwrap();
        p.rows.iter().map(|r| r[field].clone()).collect()
    }

    pub async fn count(&self, m: &str, filter: Json) -> i64 {
        self.list(m, filter, &[], Page { first: Some(1), ..Page::default() }).await.unwrap().count.unwrap()
    }
}

pub fn id(j: &Json) -> String {
    j["id"].as_str().unwrap_or_else(|| panic!("no id in {j}")).to_owned()
}

pub fn by_id(j: &Json) -> Json {
    json!({ "id": id(j) })
}
