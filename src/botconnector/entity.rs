//! Slot entities a bot returns with its answer, typed: the 14 types Genesys knows.
//!
//! On the wire every value is a string (`{"name","type","value"}`, or `"values"` for a
//! collection), a currency an escaped JSON object (`"{\"amount\":3.49,\"code\":\"USD\"}"`).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A slot entity: a name and a typed value.
///
/// ```
/// use genesys_webhook::botconnector::{Currency, Entity, EntityValue};
///
/// let price = Entity::new("price", EntityValue::Currency(Currency::new(3.49, "USD")));
/// assert_eq!(
///     serde_json::to_string(&price)?,
///     r#"{"name":"price","type":"Currency","value":"{\"amount\":3.49,\"code\":\"USD\"}"}"#
/// );
/// let sizes: Entity = serde_json::from_str(
///     r#"{"name":"sizes","type":"IntegerCollection","values":["6","12"]}"#,
/// )?;
/// assert_eq!(sizes.value, EntityValue::IntegerCollection(vec![6, 12]));
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Entity {
    /// The slot's name, as the intent declares it.
    pub name: String,
    /// Its value.
    pub value: EntityValue,
}

impl Entity {
    /// An entity named `name`.
    pub fn new(name: impl Into<String>, value: EntityValue) -> Self {
        Self {
            name: name.into(),
            value,
        }
    }
}

/// A currency amount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Currency {
    /// The amount.
    pub amount: f64,
    /// The ISO 4217 code, such as `USD`.
    pub code: String,
}

impl Currency {
    /// `amount` of `code`.
    pub fn new(amount: f64, code: impl Into<String>) -> Self {
        Self {
            amount,
            code: code.into(),
        }
    }
}

/// A slot's value, by type (the wire's `type`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EntityValue {
    /// `String`.
    String(String),
    /// `Integer`.
    Integer(i64),
    /// `Decimal`.
    Decimal(f64),
    /// `Duration`: ISO 8601, such as `P30D`.
    Duration(String),
    /// `Boolean`.
    Boolean(bool),
    /// `Currency`.
    Currency(Currency),
    /// `Datetime`: ISO 8601, such as `2024-03-15T23:59:59Z`.
    Datetime(String),
    /// `StringCollection`.
    StringCollection(Vec<String>),
    /// `IntegerCollection`.
    IntegerCollection(Vec<i64>),
    /// `DecimalCollection`.
    DecimalCollection(Vec<f64>),
    /// `DurationCollection`.
    DurationCollection(Vec<String>),
    /// `BooleanCollection`.
    BooleanCollection(Vec<bool>),
    /// `CurrencyCollection`.
    CurrencyCollection(Vec<Currency>),
    /// `DatetimeCollection`.
    DatetimeCollection(Vec<String>),
    /// A type this version does not know, as it came.
    Unknown {
        /// The wire's `type`.
        kind: String,
        /// The wire's `value`, if any.
        value: Option<Value>,
        /// The wire's `values`, if any.
        values: Option<Vec<Value>>,
    },
}

impl EntityValue {
    /// The type's name on the wire, such as `IntegerCollection`.
    pub fn type_name(&self) -> &str {
        match self {
            Self::String(_) => "String",
            Self::Integer(_) => "Integer",
            Self::Decimal(_) => "Decimal",
            Self::Duration(_) => "Duration",
            Self::Boolean(_) => "Boolean",
            Self::Currency(_) => "Currency",
            Self::Datetime(_) => "Datetime",
            Self::StringCollection(_) => "StringCollection",
            Self::IntegerCollection(_) => "IntegerCollection",
            Self::DecimalCollection(_) => "DecimalCollection",
            Self::DurationCollection(_) => "DurationCollection",
            Self::BooleanCollection(_) => "BooleanCollection",
            Self::CurrencyCollection(_) => "CurrencyCollection",
            Self::DatetimeCollection(_) => "DatetimeCollection",
            Self::Unknown { kind, .. } => kind,
        }
    }
}

/// The entity as it travels.
#[derive(Serialize, Deserialize)]
struct Wire {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    values: Option<Vec<Value>>,
}

fn text(value: String) -> Value {
    Value::String(value)
}

fn currency_text(currency: &Currency) -> Value {
    Value::String(serde_json::to_string(currency).unwrap_or_default())
}

/// A scalar as text: Genesys writes strings; numbers and booleans are taken too.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn parse_scalar<T>(value: &Value, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    parse(as_text(value)?.trim())
}

fn parse_currency(text: &str) -> Option<Currency> {
    serde_json::from_str(text).ok()
}

fn parse_currency_value(value: &Value) -> Option<Currency> {
    match value {
        Value::Object(_) => serde_json::from_value(value.clone()).ok(),
        other => parse_scalar(other, parse_currency),
    }
}

impl Serialize for Entity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn all<T>(items: &[T], each: impl Fn(&T) -> Value) -> Option<Vec<Value>> {
            Some(items.iter().map(each).collect())
        }
        let (value, values) = match &self.value {
            EntityValue::String(v) | EntityValue::Duration(v) | EntityValue::Datetime(v) => {
                (Some(text(v.clone())), None)
            }
            EntityValue::Integer(v) => (Some(text(v.to_string())), None),
            EntityValue::Decimal(v) => (Some(text(v.to_string())), None),
            EntityValue::Boolean(v) => (Some(text(v.to_string())), None),
            EntityValue::Currency(v) => (Some(currency_text(v)), None),
            EntityValue::StringCollection(v)
            | EntityValue::DurationCollection(v)
            | EntityValue::DatetimeCollection(v) => (None, all(v, |s| text(s.clone()))),
            EntityValue::IntegerCollection(v) => (None, all(v, |n| text(n.to_string()))),
            EntityValue::DecimalCollection(v) => (None, all(v, |n| text(n.to_string()))),
            EntityValue::BooleanCollection(v) => (None, all(v, |b| text(b.to_string()))),
            EntityValue::CurrencyCollection(v) => (None, all(v, currency_text)),
            EntityValue::Unknown { value, values, .. } => (value.clone(), values.clone()),
        };
        Wire {
            name: self.name.clone(),
            kind: self.value.type_name().to_owned(),
            value,
            values,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Entity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let bad = || {
            D::Error::custom(format_args!(
                "entity {:?}: the value is not a {}",
                wire.name, wire.kind
            ))
        };
        let one = || wire.value.as_ref().ok_or_else(bad);
        let many = || wire.values.as_deref().ok_or_else(bad);
        fn each<T, E>(
            items: &[Value],
            parse: impl Fn(&Value) -> Option<T>,
            bad: impl Fn() -> E,
        ) -> Result<Vec<T>, E> {
            items.iter().map(|v| parse(v).ok_or_else(&bad)).collect()
        }
        let value = match wire.kind.as_str() {
            "String" => EntityValue::String(as_text(one()?).ok_or_else(bad)?),
            "Integer" => {
                EntityValue::Integer(parse_scalar(one()?, |s| s.parse().ok()).ok_or_else(bad)?)
            }
            "Decimal" => {
                EntityValue::Decimal(parse_scalar(one()?, |s| s.parse().ok()).ok_or_else(bad)?)
            }
            "Duration" => EntityValue::Duration(as_text(one()?).ok_or_else(bad)?),
            "Boolean" => {
                EntityValue::Boolean(parse_scalar(one()?, |s| s.parse().ok()).ok_or_else(bad)?)
            }
            "Currency" => EntityValue::Currency(parse_currency_value(one()?).ok_or_else(bad)?),
            "Datetime" => EntityValue::Datetime(as_text(one()?).ok_or_else(bad)?),
            "StringCollection" => EntityValue::StringCollection(each(many()?, as_text, bad)?),
            "IntegerCollection" => EntityValue::IntegerCollection(each(
                many()?,
                |v| parse_scalar(v, |s| s.parse().ok()),
                bad,
            )?),
            "DecimalCollection" => EntityValue::DecimalCollection(each(
                many()?,
                |v| parse_scalar(v, |s| s.parse().ok()),
                bad,
            )?),
            "DurationCollection" => EntityValue::DurationCollection(each(many()?, as_text, bad)?),
            "BooleanCollection" => EntityValue::BooleanCollection(each(
                many()?,
                |v| parse_scalar(v, |s| s.parse().ok()),
                bad,
            )?),
            "CurrencyCollection" => {
                EntityValue::CurrencyCollection(each(many()?, parse_currency_value, bad)?)
            }
            "DatetimeCollection" => EntityValue::DatetimeCollection(each(many()?, as_text, bad)?),
            _ => EntityValue::Unknown {
                kind: wire.kind.clone(),
                value: wire.value.clone(),
                values: wire.values.clone(),
            },
        };
        Ok(Entity {
            name: wire.name,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fourteen types as a third-party client library's test data writes them.
    const ALL_FOURTEEN: &str = r#"[
      {"name":"ProductName","type":"String","value":"Chocolate Chip Cookie"},
      {"name":"Size","type":"Integer","value":"12"},
      {"name":"Weight","type":"Decimal","value":"85.6"},
      {"name":"ConsumeBefore","type":"Duration","value":"P30D"},
      {"name":"Diet","type":"Boolean","value":"false"},
      {"name":"CurrentPrice","type":"Currency","value":"{\"amount\": 3.49, \"code\": \"USD\"}"},
      {"name":"ExpiryDate","type":"Datetime","value":"2024-03-15T23:59:59.000Z"},
      {"name":"Ingredients","type":"StringCollection","values":["flour","sugar"]},
      {"name":"Presentations","type":"IntegerCollection","values":["6","12","24"]},
      {"name":"AvailableWeights","type":"DecimalCollection","values":["50.0","85.5"]},
      {"name":"ShelfLifeOptions","type":"DurationCollection","values":["P15D","P30D"]},
      {"name":"ProductAttributes","type":"BooleanCollection","values":["true","false"]},
      {"name":"PreviousPrices","type":"CurrencyCollection","values":["{\"amount\": 3.29, \"code\": \"USD\"}"]},
      {"name":"BatchDates","type":"DatetimeCollection","values":["2024-02-01T10:00:00Z"]}
    ]"#;

    #[test]
    fn reads_all_fourteen_types_and_writes_them_back_as_strings() {
        let entities: Vec<Entity> = serde_json::from_str(ALL_FOURTEEN).unwrap();
        assert_eq!(entities.len(), 14);
        assert_eq!(entities[1].value, EntityValue::Integer(12));
        assert_eq!(entities[2].value, EntityValue::Decimal(85.6));
        assert_eq!(entities[4].value, EntityValue::Boolean(false));
        assert_eq!(
            entities[5].value,
            EntityValue::Currency(Currency::new(3.49, "USD"))
        );
        assert_eq!(
            entities[8].value,
            EntityValue::IntegerCollection(vec![6, 12, 24])
        );
        assert_eq!(
            entities[12].value,
            EntityValue::CurrencyCollection(vec![Currency::new(3.29, "USD")])
        );
        let names: Vec<&str> = entities.iter().map(|e| e.value.type_name()).collect();
        assert!(names.iter().all(|n| !n.is_empty()));
        // Written back, every value is a string again and reads the same.
        let written = serde_json::to_value(&entities).unwrap();
        for entity in written.as_array().unwrap() {
            match (entity.get("value"), entity.get("values")) {
                (Some(value), None) => assert!(value.is_string(), "{entity}"),
                (None, Some(values)) => {
                    assert!(values.as_array().unwrap().iter().all(Value::is_string))
                }
                _ => panic!("{entity}"),
            }
        }
        let again: Vec<Entity> = serde_json::from_value(written).unwrap();
        assert_eq!(again, entities);
    }

    #[test]
    fn takes_numbers_and_booleans_unquoted_and_keeps_unknown_types() {
        let entity: Entity =
            serde_json::from_str(r#"{"name":"n","type":"Integer","value":7}"#).unwrap();
        assert_eq!(entity.value, EntityValue::Integer(7));
        let entity: Entity =
            serde_json::from_str(r#"{"name":"x","type":"Shiny","value":{"a":1}}"#).unwrap();
        assert_eq!(entity.value.type_name(), "Shiny");
        assert_eq!(
            serde_json::to_string(&entity).unwrap(),
            r#"{"name":"x","type":"Shiny","value":{"a":1}}"#
        );
    }

    #[test]
    fn refuses_a_value_that_is_not_its_type_and_names_the_entity() {
        let error =
            serde_json::from_str::<Entity>(r#"{"name":"size","type":"Integer","value":"big"}"#)
                .unwrap_err();
        assert!(error.to_string().contains("size"), "{error}");
        assert!(serde_json::from_str::<Entity>(
            r#"{"name":"s","type":"IntegerCollection","value":"1"}"#
        )
        .is_err());
    }
}
