use std::collections::BTreeMap;
use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{CloudError, GenesysCloud};

const PATH: &str = "/api/v2/conversations/messaging/integrations/open";
const PAGE_SIZE: u32 = 100;

/// An Open Messaging integration as Genesys Cloud describes it. The signature secret
/// is write-only: Genesys never returns it. `Debug` shows the static headers' names,
/// not their values (often credentials).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OpenMessagingIntegration {
    /// The integration's id.
    pub id: String,
    /// Its display name.
    #[serde(default)]
    pub name: String,
    /// Where Genesys sends outbound messages, signed with `X-Hub-Signature-256`.
    #[serde(default)]
    pub outbound_notification_webhook_url: Option<String>,
    /// Static headers sent with every webhook call.
    #[serde(default)]
    pub webhook_headers: Option<BTreeMap<String, String>>,
    /// Provisioning status (`Pending`, `Completed`, `Error`).
    #[serde(default)]
    pub create_status: Option<String>,
    /// When it was created (ISO 8601).
    #[serde(default)]
    pub date_created: Option<String>,
}

impl fmt::Debug for OpenMessagingIntegration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenMessagingIntegration")
            .field("id", &self.id)
            .field("name", &self.name)
            .field(
                "outbound_notification_webhook_url",
                &self.outbound_notification_webhook_url,
            )
            .field(
                "webhook_headers",
                &self
                    .webhook_headers
                    .as_ref()
                    .map(|h| h.keys().collect::<Vec<_>>()),
            )
            .field("create_status", &self.create_status)
            .field("date_created", &self.date_created)
            .finish()
    }
}

/// What [`OpenMessaging::create`] sends.
#[derive(Clone)]
pub struct NewOpenMessagingIntegration {
    name: String,
    webhook_url: String,
    signature_secret: Zeroizing<String>,
    webhook_headers: BTreeMap<String, String>,
}

impl NewOpenMessagingIntegration {
    /// An integration named `name` calling `webhook_url`, signing with
    /// `signature_secret` (the receiver's `GENESYS_WEBHOOK_SECRET`).
    pub fn new(
        name: impl Into<String>,
        webhook_url: impl Into<String>,
        signature_secret: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            webhook_url: webhook_url.into(),
            signature_secret: Zeroizing::new(signature_secret.into()),
            webhook_headers: BTreeMap::new(),
        }
    }

    /// Adds a static header Genesys sends with every webhook call.
    pub fn webhook_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.webhook_headers.insert(name.into(), value.into());
        self
    }
}

impl fmt::Debug for NewOpenMessagingIntegration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewOpenMessagingIntegration")
            .field("name", &self.name)
            .field("webhook_url", &self.webhook_url)
            .field("signature_secret", &"[redacted]")
            .field(
                "webhook_headers",
                &self.webhook_headers.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What [`OpenMessaging::update`] changes; fields left unset are kept.
#[derive(Clone, Default)]
pub struct OpenMessagingIntegrationUpdate {
    webhook_url: Option<String>,
    signature_secret: Option<Zeroizing<String>>,
}

impl OpenMessagingIntegrationUpdate {
    /// Nothing changed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Points the webhook at a new URL.
    pub fn webhook_url(mut self, url: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self
    }

    /// Signs with a new secret (rotate the receiver's secrets first).
    pub fn signature_secret(mut self, secret: impl Into<String>) -> Self {
        self.signature_secret = Some(Zeroizing::new(secret.into()));
        self
    }

    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self.webhook_url.is_none() && self.signature_secret.is_none()
    }
}

impl fmt::Debug for OpenMessagingIntegrationUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenMessagingIntegrationUpdate")
            .field("webhook_url", &self.webhook_url)
            .field(
                "signature_secret",
                &self.signature_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// What [`OpenMessaging::create_checked`] made.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Created {
    /// The integration.
    pub integration: OpenMessagingIntegration,
    /// The unclear answer (a 5xx, a lost connection) after which the integration was
    /// found by name, if it came to that.
    pub recovered_from: Option<CloudError>,
}

/// Whether a failed create may have been committed: a server error or an answer that
/// never arrived (a refused connection sent nothing).
fn unclear(error: &CloudError) -> bool {
    match error {
        CloudError::Api(api) => api.status >= 500,
        CloudError::Transport(transport) => !transport.is_connect(),
        _ => false,
    }
}

/// Open Messaging integrations of the organization; from [`GenesysCloud::open_messaging`].
#[derive(Debug, Clone, Copy)]
pub struct OpenMessaging<'a> {
    cloud: &'a GenesysCloud,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    entities: Vec<OpenMessagingIntegration>,
    #[serde(default)]
    page_count: Option<u32>,
}

impl<'a> OpenMessaging<'a> {
    pub(crate) fn new(cloud: &'a GenesysCloud) -> Self {
        Self { cloud }
    }

    /// Creates an integration (`POST /api/v2/conversations/messaging/integrations/open`),
    /// as [`create_checked`](Self::create_checked) does, returning the integration.
    ///
    /// # Errors
    ///
    /// [`CloudError`] from the token or the API (a 403 names the missing permission).
    pub async fn create(
        &self,
        new: &NewOpenMessagingIntegration,
    ) -> Result<OpenMessagingIntegration, CloudError> {
        self.create_checked(new)
            .await
            .map(|created| created.integration)
    }

    /// Creates an integration. The `POST` is never sent twice: a 5xx or a lost answer
    /// may come from a gateway after Genesys committed the create, so instead of a
    /// retry (which would make a second integration, whose secret nobody has) the
    /// integration is looked up by name and webhook URL. [`Created::recovered_from`]
    /// then says which answer was recovered from. The integrations that existed before
    /// the `POST` (listed first) are never adopted: one with the same name and URL made
    /// by an earlier run holds a secret other than `new`'s, and adopting it would leave
    /// every webhook failing its signature check. When that first list fails, the
    /// create goes ahead without recovery.
    ///
    /// # Errors
    ///
    /// [`CloudError`] from the token or the API; after an unclear answer, that answer
    /// when no integration (or more than one) has the name and URL.
    pub async fn create_checked(
        &self,
        new: &NewOpenMessagingIntegration,
    ) -> Result<Created, CloudError> {
        let existing: Option<Vec<String>> = match self.list().await {
            Ok(all) => Some(all.into_iter().map(|i| i.id).collect()),
            Err(error) => {
                tracing::warn!(%error, "could not list integrations before creating one; an unclear answer will not be recovered from");
                None
            }
        };
        match self.post(new).await {
            Ok(integration) => Ok(Created {
                integration,
                recovered_from: None,
            }),
            Err(error) if unclear(&error) => {
                let Some(existing) = existing else {
                    return Err(error);
                };
                tracing::warn!(%error, name = %new.name, "create got no clear answer; looking the integration up by name");
                let Ok(all) = self.list().await else {
                    return Err(error);
                };
                let mut found = all.into_iter().filter(|i| {
                    !existing.contains(&i.id)
                        && i.name == new.name
                        && i.outbound_notification_webhook_url.as_deref()
                            == Some(new.webhook_url.as_str())
                });
                match (found.next(), found.next()) {
                    (Some(integration), None) => Ok(Created {
                        integration,
                        recovered_from: Some(error),
                    }),
                    _ => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    async fn post(
        &self,
        new: &NewOpenMessagingIntegration,
    ) -> Result<OpenMessagingIntegration, CloudError> {
        let mut body = serde_json::json!({
            "name": new.name,
            "outboundNotificationWebhookUrl": new.webhook_url,
            "outboundNotificationWebhookSignatureSecretToken": new.signature_secret.as_str(),
        });
        if !new.webhook_headers.is_empty() {
            body["webhookHeaders"] = serde_json::json!(new.webhook_headers);
        }
        let body = Zeroizing::new(serde_json::to_vec(&body).unwrap_or_default());
        self.cloud
            .api_json(Method::POST, PATH, Some(body.to_vec()))
            .await
    }

    /// Lists every integration, following Genesys' paging (`pageNumber`, `pageCount`).
    ///
    /// # Errors
    ///
    /// [`CloudError`] from the token or the API.
    pub async fn list(&self) -> Result<Vec<OpenMessagingIntegration>, CloudError> {
        let mut all = Vec::new();
        let mut page_number = 1;
        loop {
            let path = format!("{PATH}?pageSize={PAGE_SIZE}&pageNumber={page_number}");
            let page: Page = self.cloud.api_json(Method::GET, &path, None).await?;
            let empty = page.entities.is_empty();
            all.extend(page.entities);
            match page.page_count {
                Some(count) if page_number < count && !empty => page_number += 1,
                _ => return Ok(all),
            }
        }
    }

    /// Gets one integration.
    ///
    /// # Errors
    ///
    /// [`CloudError::InvalidConfig`] for an id that is not a Genesys id; otherwise
    /// from the token or the API (404 when there is no such integration).
    pub async fn get(&self, id: &str) -> Result<OpenMessagingIntegration, CloudError> {
        let path = format!("{PATH}/{}", checked_id(id)?);
        self.cloud.api_json(Method::GET, &path, None).await
    }

    /// Changes the webhook URL and/or the signature secret (`PATCH`).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), and [`CloudError::InvalidConfig`] when nothing would
    /// change.
    pub async fn update(
        &self,
        id: &str,
        update: &OpenMessagingIntegrationUpdate,
    ) -> Result<OpenMessagingIntegration, CloudError> {
        if update.is_empty() {
            return Err(CloudError::InvalidConfig(
                "nothing to update: give a webhook URL or a signature secret".into(),
            ));
        }
        let path = format!("{PATH}/{}", checked_id(id)?);
        let mut body = serde_json::Map::new();
        if let Some(url) = &update.webhook_url {
            body.insert("outboundNotificationWebhookUrl".into(), url.clone().into());
        }
        if let Some(secret) = &update.signature_secret {
            body.insert(
                "outboundNotificationWebhookSignatureSecretToken".into(),
                secret.as_str().into(),
            );
        }
        let body = Zeroizing::new(serde_json::to_vec(&body).unwrap_or_default());
        self.cloud
            .api_json(Method::PATCH, &path, Some(body.to_vec()))
            .await
    }

    /// Deletes an integration.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn delete(&self, id: &str) -> Result<(), CloudError> {
        let path = format!("{PATH}/{}", checked_id(id)?);
        self.cloud.api(Method::DELETE, &path, None).await.map(drop)
    }
}

/// Genesys ids are UUIDs; refusing anything else keeps a typo from reaching another
/// path.
fn checked_id(id: &str) -> Result<&str, CloudError> {
    let id = id.trim();
    if !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Ok(id)
    } else {
        Err(CloudError::InvalidConfig(format!(
            "{id:?} is not an integration id"
        )))
    }
}
