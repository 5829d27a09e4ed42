//! Validated names. Tenant-authored names become SQL identifiers and GraphQL names, so past this
//! module they are carried as newtypes that can only be built through a checking constructor.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::NameError;

/// Longest name accepted anywhere (PostgreSQL truncates identifiers at 63 bytes).
pub const MAX_NAME_LEN: usize = 48;

fn check(kind: &'static str, s: &str, first: fn(char) -> bool, rest: fn(char) -> bool) -> Result<(), NameError> {
    let mut chars = s.chars();
    let ok_first = chars.next().is_some_and(first);
    if !ok_first || !chars.all(rest) || s.len() > MAX_NAME_LEN {
        return Err(NameError { kind, name: s.to_owned() });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $t:ident, $kind:literal, $first:expr, $rest:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $t(String);

        impl $t {
            /// Checks `s` and wraps it.
            ///
            /// # Errors
            /// When `s` is not a valid name of this kind.
            pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
                let s = s.into();
                check($kind, &s, $first, $rest)?;
                Ok(Self(s))
            }
            /// The name as written.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $t {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }

        impl TryFrom<&str> for $t {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }
    };
}

name_type!(
    /// A model's API name: `PascalCase`, letters and digits (`Lead`, `SocialEvent`).
    ModelName, "model name", |c| c.is_ascii_uppercase(), |c| c.is_ascii_alphanumeric()
);
name_type!(
    /// A field's API name: `camelCase`, letters and digits (`email`, `lastContactedAt`). No
    /// underscores, so a field name can never collide with a generated filter name (`email_not`).
    FieldName, "field name", |c| c.is_ascii_lowercase(), |c| c.is_ascii_alphanumeric()
);
name_type!(
    /// A SQL identifier (table or column): `snake_case`, lower-case letters, digits, underscores.
    SqlName, "SQL name", |c| c.is_ascii_lowercase(), |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
);
name_type!(
    /// A tenant id (a ZITADEL organization id): letters, digits, `-` and `_`.
    OrgId, "organization id", |c| c.is_ascii_alphanumeric(), |c| c.is_ascii_alphanumeric() || c == '-' || c == '_'
);
name_type!(
    /// A role name as it appears in a token's role claim.
    RoleName, "role name", |c| c.is_ascii_alphabetic(), |c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || c == ':'
);
name_type!(
    /// A select option: a valid GraphQL enum value (`NEW`, `CLOSED_WON`).
    OptionName, "option", |c| c.is_ascii_alphabetic() || c == '_', |c| c.is_ascii_alphanumeric() || c == '_'
);

/// `camelCase` or `PascalCase` to `snake_case` (`lastContactedAt` -> `last_contacted_at`).
#[must_use]
pub fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut prev_lower_or_digit = false;
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower_or_digit {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower_or_digit = false;
        } else {
            out.push(c);
            prev_lower_or_digit = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

/// An API name in words, for labels (`lastContactedAt` -> `Last contacted at`).
#[must_use]
pub fn humanize(s: &str) -> String {
    let words = snake_case(s).replace('_', " ");
    let mut c = words.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// `PascalCase` to `camelCase` (`SocialEvent` -> `socialEvent`).
#[must_use]
pub fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// English plural of a word, good enough for defaults (`Activity` -> `Activities`); declare the
/// plural in metadata when it is wrong.
#[must_use]
pub fn english_plural(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let ends = |x: &str| lower.ends_with(x);
    if ends("y") && !(ends("ay") || ends("ey") || ends("oy") || ends("uy")) {
        format!("{}ies", &s[..s.len() - 1])
    } else if ends("s") || ends("x") || ends("z") || ends("ch") || ends("sh") {
        format!("{s}es")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(ModelName::new("SocialEvent").is_ok());
        assert!(ModelName::new("socialEvent").is_err());
        assert!(ModelName::new("Social_Event").is_err());
        assert!(FieldName::new("lastContactedAt").is_ok());
        assert!(FieldName::new("email_not").is_err());
        assert!(FieldName::new("").is_err());
        assert!(FieldName::new("a\"; DROP TABLE x").is_err());
        assert!(OrgId::new("2687451234567").is_ok());
        assert!(OrgId::new("org a").is_err());
        assert!(FieldName::new("x".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn case_conversions() {
        assert_eq!(snake_case("lastContactedAt"), "last_contacted_at");
        assert_eq!(snake_case("SocialEvent"), "social_event");
        assert_eq!(snake_case("address2"), "address2");
        assert_eq!(lower_first("SocialEvent"), "socialEvent");
        assert_eq!(english_plural("Activity"), "Activities");
        assert_eq!(english_plural("Opportunity"), "Opportunities");
        assert_eq!(english_plural("Day"), "Days");
        assert_eq!(english_plural("Address"), "Addresses");
        assert_eq!(english_plural("Lead"), "Leads");
    }
}
