//! Roles and grants come from the configuration file's `[roles]` table, on top of the defaults.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crm_model::{ModelName, RoleName};
use crm_orm::RowRule;
use crm_server::Config;

#[test]
fn roles_table_adds_and_replaces_roles() {
    let dir = std::env::temp_dir().join(format!("crm-policy-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("crm.toml");
    std::fs::write(
        &path,
        r#"
max_depth = 14

[roles.intern]
default = { read = "all" }
models.Lead = { read = "all", create = "all", update = "ownOrUnassigned" }
fields.Lead = { denyRead = ["score"], denyWrite = ["status"] }

[roles.viewer]
default = { read = "all" }
models.Member = {}

[roles.regional_head]
default = { read = "all" }
descendants = true
"#,
    )
    .unwrap();
    let config = Config::try_parse_args(["crm-server", "--config", path.to_str().unwrap()]).unwrap();
    assert_eq!(config.max_depth, 14);
    let policy = config.policy();
    let role = |r: &str| policy.roles.get(&RoleName::new(r).unwrap()).cloned().unwrap_or_else(|| panic!("role {r}"));
    // Added roles, with their grants, field rules and hierarchy flag.
    let intern = role("intern");
    assert_eq!(intern.models[&ModelName::new("Lead").unwrap()].update, Some(RowRule::OwnOrUnassigned));
    assert_eq!(intern.fields[&ModelName::new("Lead").unwrap()].deny_read[0].as_str(), "score");
    assert!(role("regional_head").descendants);
    // A replaced default role, and the untouched defaults.
    assert_eq!(role("viewer").models[&ModelName::new("Member").unwrap()].read, None);
    assert_eq!(role("admin").default.delete, Some(RowRule::All));
    assert!(role("parent_admin").descendants);

    // A misspelt key inside a role is refused, naming the line.
    std::fs::write(&path, "[roles.intern]\ndefault = { read = \"all\" }\nfeilds = {}\n").unwrap();
    let err = Config::try_parse_args(["crm-server", "--config", path.to_str().unwrap()]).unwrap_err().to_string();
    assert!(err.contains("line 3") || err.contains("feilds"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
