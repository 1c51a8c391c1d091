//! The bot descriptions Genesys lists (`GET {base}/bots`, `GET {base}/bots/{botId}`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::wire::Extra;

/// The most intents a bot version may declare.
pub const MAX_INTENTS: usize = 50;

/// A bot, as Genesys lists it.
///
/// ```
/// use genesys_webhook::botconnector::{Bot, BotVersion};
///
/// let bot = Bot::new("demo-bot", "Demo bot")
///     .version(BotVersion::new("1", ["en-us"], ["Greeting", "Menu", "Goodbye"]));
/// bot.validate()?;
/// assert_eq!(serde_json::to_value(&bot)?["versions"][0]["intents"][2]["name"], "Goodbye");
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Bot {
    /// The bot's id, unique among the bots listed.
    pub id: String,
    /// Its name, as Architect shows it.
    pub name: String,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who provides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Its versions.
    #[serde(default)]
    pub versions: Vec<BotVersion>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Bot {
    /// A bot with no version yet.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            description: None,
            provider: None,
            versions: Vec::new(),
            extra: Extra::new(),
        }
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Adds a version.
    #[must_use]
    pub fn version(mut self, version: BotVersion) -> Self {
        self.versions.push(version);
        self
    }

    /// Whether `intent` is declared by the version named `version`, or by any version
    /// when `version` is `None` or not one of the bot's.
    pub fn declares_intent(&self, version: Option<&str>, intent: &str) -> bool {
        let declares = |v: &BotVersion| v.intents.iter().any(|i| i.name == intent);
        match version.and_then(|name| self.versions.iter().find(|v| v.version == name)) {
            Some(found) => declares(found),
            None => self.versions.iter().any(declares),
        }
    }

    /// Checks what Genesys requires of a bot description: an id, at least one version,
    /// at most [`MAX_INTENTS`] intents per version, intent names unique in a version.
    ///
    /// # Errors
    ///
    /// [`InvalidBot`], naming the bot and what is wrong.
    pub fn validate(&self) -> Result<(), InvalidBot> {
        let invalid = |reason: String| InvalidBot {
            bot: self.id.clone(),
            reason,
        };
        if self.id.is_empty() {
            return Err(invalid("the id is empty".into()));
        }
        if self.versions.is_empty() {
            return Err(invalid("it has no version".into()));
        }
        for version in &self.versions {
            if version.intents.len() > MAX_INTENTS {
                return Err(invalid(format!(
                    "version {:?} declares {} intents, more than the {MAX_INTENTS} allowed",
                    version.version,
                    version.intents.len()
                )));
            }
            for (i, intent) in version.intents.iter().enumerate() {
                if version.intents[..i].iter().any(|o| o.name == intent.name) {
                    return Err(invalid(format!(
                        "version {:?} declares intent {:?} twice",
                        version.version, intent.name
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Why a [`Bot`] description cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvalidBot {
    /// The bot's id.
    pub bot: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for InvalidBot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bot {:?}: {}", self.bot, self.reason)
    }
}

impl std::error::Error for InvalidBot {}

/// One version of a bot: its languages and intents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BotVersion {
    /// The version's name.
    pub version: String,
    /// Languages, such as `en-us`.
    #[serde(default)]
    pub supported_languages: Vec<String>,
    /// The intents it may complete with (at most [`MAX_INTENTS`]).
    #[serde(default)]
    pub intents: Vec<BotIntent>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

impl BotVersion {
    /// A version with languages and intents without slots.
    pub fn new<L, I>(
        version: impl Into<String>,
        languages: impl IntoIterator<Item = L>,
        intents: impl IntoIterator<Item = I>,
    ) -> Self
    where
        L: Into<String>,
        I: Into<String>,
    {
        Self {
            version: version.into(),
            supported_languages: languages.into_iter().map(Into::into).collect(),
            intents: intents.into_iter().map(BotIntent::new).collect(),
            extra: Extra::new(),
        }
    }

    /// Adds an intent.
    #[must_use]
    pub fn intent(mut self, intent: BotIntent) -> Self {
        self.intents.push(intent);
        self
    }
}

/// An intent a bot may complete with, and its slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BotIntent {
    /// The intent's name: Architect's paths are named after it.
    pub name: String,
    /// Its slots.
    #[serde(default)]
    pub entities: Vec<IntentEntity>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

impl BotIntent {
    /// An intent without slots.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            entities: Vec::new(),
            extra: Extra::new(),
        }
    }

    /// Adds a slot named `name` of `kind` (`String`, `Integer`, … `DatetimeCollection`).
    #[must_use]
    pub fn entity(mut self, name: impl Into<String>, kind: impl Into<String>) -> Self {
        self.entities.push(IntentEntity {
            name: name.into(),
            kind: kind.into(),
            extra: Extra::new(),
        });
        self
    }
}

/// A slot an intent declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct IntentEntity {
    /// The slot's name.
    pub name: String,
    /// Its type, as [`EntityValue::type_name`](super::EntityValue::type_name) spells it.
    #[serde(rename = "type")]
    pub kind: String,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_version_with_more_than_fifty_intents() {
        let intents: Vec<String> = (0..=MAX_INTENTS).map(|i| format!("I{i}")).collect();
        let bot = Bot::new("b", "B").version(BotVersion::new("1", ["en-us"], intents.clone()));
        let error = bot.validate().unwrap_err();
        assert!(error.to_string().contains("51 intents"), "{error}");
        let fifty = Bot::new("b", "B").version(BotVersion::new("1", ["en-us"], &intents[..50]));
        fifty.validate().unwrap();
    }

    #[test]
    fn knows_which_intents_a_version_declares() {
        let bot = Bot::new("b", "B")
            .version(BotVersion::new("1", ["en-us"], ["A"]))
            .version(BotVersion::new("2", ["en-us"], ["B"]));
        assert!(bot.declares_intent(Some("1"), "A"));
        assert!(!bot.declares_intent(Some("1"), "B"));
        assert!(bot.declares_intent(None, "B"));
        assert!(bot.declares_intent(Some("9"), "B"));
        assert!(!bot.declares_intent(None, "C"));
    }
}
