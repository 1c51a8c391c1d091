//! `genesys-webhook setup`: the Open Messaging integration that makes Genesys Cloud
//! call the receiver, signed with `X-Hub-Signature-256`.

use base64::Engine as _;
use genesys_webhook::cloud::{
    CloudError, GenesysCloud, NewOpenMessagingIntegration, OpenMessagingIntegration,
    OpenMessagingIntegrationUpdate,
};
use serde_json::json;

use std::path::PathBuf;

use crate::credentials::Credentials;
use crate::input::parse_header;
use crate::output::{progress, Failure, Report};
use crate::secret::{one_secret, write_secret_file, Hidden};

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("action").args(["list", "update", "delete"]))]
pub(crate) struct Args {
    #[command(flatten)]
    credentials: Credentials,
    /// The receiver's public URL (Genesys calls only HTTPS on port 443).
    #[arg(long)]
    webhook_url: Option<String>,
    /// The integration's name.
    #[arg(long, default_value = "genesys-webhook receiver")]
    name: String,
    /// The webhook signing secret; on create, a random 256-bit one is generated when
    /// absent. Prefer the variable or --signature-secret-file.
    #[arg(long, env = "GENESYS_SIGNATURE_SECRET", hide_env_values = true)]
    signature_secret: Option<Hidden>,
    /// Read the webhook signing secret from this file.
    #[arg(long, value_name = "PATH")]
    signature_secret_file: Option<PathBuf>,
    /// With --update: generate a fresh 256-bit signing secret, send it, and show it once
    /// (rotation without typing a secret).
    #[arg(long, requires = "update")]
    generate_secret: bool,
    /// Write a generated secret to this new file (mode 0600) instead of printing it.
    #[arg(long, value_name = "PATH")]
    secret_out: Option<PathBuf>,
    /// Accept a webhook URL that is not HTTPS on port 443 (Genesys Cloud will not call
    /// it; for tests against a local receiver).
    #[arg(long)]
    allow_insecure_url: bool,
    /// A static header Genesys sends with every call, 'Name: value'; repeatable.
    #[arg(long = "webhook-header", value_parser = parse_header)]
    webhook_headers: Vec<(String, String)>,
    /// List the organization's Open Messaging integrations.
    #[arg(long)]
    list: bool,
    /// Change the webhook URL and/or signature secret of integration ID.
    #[arg(long, value_name = "ID")]
    update: Option<String>,
    /// Delete integration ID.
    #[arg(long, value_name = "ID")]
    delete: Option<String>,
}

pub(crate) async fn run(args: Args, json: bool) -> Result<Report, Failure> {
    // What to do first, then with which credentials: a missing action is the first
    // thing to say.
    if !args.list && args.update.is_none() && args.delete.is_none() && args.webhook_url.is_none() {
        return Err(Failure::io(
            "say what to do: --webhook-url URL to create an integration, --list, \
             --update ID or --delete ID",
        ));
    }
    if let Some(url) = &args.webhook_url {
        check_url(url, args.allow_insecure_url)?;
    }
    let cloud = args.credentials.client()?;
    if args.list {
        return list(&cloud, json).await;
    }
    if let Some(id) = &args.delete {
        progress(json, format!("Deleting integration {id}…"));
        cloud
            .open_messaging()
            .delete(id)
            .await
            .map_err(cloud_failure)?;
        return Ok(Report::passed(
            format!("Deleted Open Messaging integration {id}."),
            json!({ "action": "deleted", "id": id }),
        ));
    }
    if let Some(id) = &args.update {
        return update(&cloud, &args, id, json).await;
    }
    create(&cloud, &args, json).await
}

/// API refusals fail the check (exit 1); anything else is an I/O or usage error (2).
pub(crate) fn cloud_failure(error: CloudError) -> Failure {
    match error {
        CloudError::Api(_)
        | CloudError::Authentication(_)
        | CloudError::RetryAfterTooLong { .. } => Failure::check(error.to_string()),
        _ => Failure::io(error.to_string()),
    }
}

/// Genesys calls only HTTPS URLs on port 443: anything else is refused, unless
/// `allow_insecure` (then it is a warning).
fn check_url(url: &str, allow_insecure: bool) -> Result<Vec<String>, Failure> {
    let problem = match reqwest::Url::parse(url) {
        Err(error) => {
            return Err(Failure::io(format!(
                "--webhook-url {url:?} is not a valid URL ({error})"
            )))
        }
        Ok(parsed) if parsed.scheme() != "https" => Some(format!(
            "{url} is not HTTPS: Genesys Cloud only calls HTTPS webhooks on port 443"
        )),
        Ok(parsed) if parsed.port_or_known_default() != Some(443) => Some(format!(
            "{url} uses port {}: Genesys Cloud only calls HTTPS webhooks on port 443",
            parsed.port_or_known_default().unwrap_or(0)
        )),
        Ok(_) => None,
    };
    match problem {
        None => Ok(Vec::new()),
        Some(problem) if allow_insecure => {
            eprintln!("warning: {problem}");
            Ok(vec![problem])
        }
        Some(problem) => Err(Failure::io(format!(
            "{problem}; pass --allow-insecure-url to register it anyway"
        ))),
    }
}

/// 256 random bits, URL-safe base64 (43 characters).
fn generate_secret() -> Result<String, Failure> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Failure::io(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The signing secret to send: given (option, variable or file), or generated.
fn signing_secret(args: &Args, generate: bool) -> Result<Option<(String, bool)>, Failure> {
    if generate {
        return generate_secret().map(|s| Some((s, true)));
    }
    match one_secret(
        args.signature_secret.as_ref(),
        args.signature_secret_file.as_deref(),
    )? {
        Some(secret) if secret.trim().is_empty() => {
            Err(Failure::io("the signature secret is blank"))
        }
        Some(secret) => Ok(Some((secret, false))),
        None => Ok(None),
    }
}

/// Shows a generated secret exactly once, as the line that starts the receiver, or
/// writes it to `--secret-out`. Adds it to `doc` as that same line.
fn reveal(
    args: &Args,
    secret: &str,
    text: &mut String,
    doc: &mut serde_json::Value,
) -> Result<(), Failure> {
    match &args.secret_out {
        Some(path) => {
            write_secret_file(path, secret)?;
            text.push_str(&format!(
                "The generated signing secret is in {} (mode 0600); start the receiver with \
                 GENESYS_WEBHOOK_SECRET set to it.\n",
                path.display()
            ));
            doc["secretFile"] = path.display().to_string().into();
        }
        None => {
            text.push_str(
                "Genesys Cloud signs every webhook with this secret. It is shown now only; \
                 start the receiver with this variable set:\n\n",
            );
            let line = format!("GENESYS_WEBHOOK_SECRET={secret}");
            text.push_str(&line);
            text.push('\n');
            doc["env"] = line.into();
        }
    }
    Ok(())
}

async fn create(cloud: &GenesysCloud, args: &Args, json: bool) -> Result<Report, Failure> {
    let url = args.webhook_url.as_deref().ok_or_else(|| {
        Failure::io("--webhook-url is required to create an integration (or use --list, --update ID, --delete ID)")
    })?;
    let warnings = check_url(url, args.allow_insecure_url)?;
    let (secret, generated) = match signing_secret(args, false)? {
        Some(given) => given,
        None => (generate_secret()?, true),
    };
    let mut new = NewOpenMessagingIntegration::new(&args.name, url, secret.as_str());
    for (name, value) in &args.webhook_headers {
        new = new.webhook_header(name, value);
    }
    progress(
        json,
        format!(
            "Creating Open Messaging integration {:?} at {}…",
            args.name,
            cloud.endpoints().api_base()
        ),
    );
    let outcome = cloud
        .open_messaging()
        .create_checked(&new)
        .await
        .map_err(|error| {
            let mut failure = cloud_failure(error.clone());
            if matches!(&error, CloudError::Api(api) if api.status >= 500)
                || matches!(&error, CloudError::Transport(_))
            {
                failure = failure.with_note(format!(
                    "the answer was unclear and no integration named {:?} calling {url} was found afterwards; \
                     check with `genesys-webhook setup --list` before running the command again",
                    args.name
                ));
            }
            failure
        })?;
    let created = outcome.integration;
    let mut text = format!(
        "Created Open Messaging integration {:?} (id {}), calling {url}.\n",
        created.name, created.id
    );
    if let Some(error) = &outcome.recovered_from {
        text.push_str(&format!(
            "Genesys Cloud's answer was unclear ({error}), but the integration exists: found by name, created once.\n"
        ));
    }
    let mut doc = json!({
        "action": "created",
        "integration": summary(&created),
        "warnings": warnings,
    });
    if generated {
        reveal(args, &secret, &mut text, &mut doc)?;
    } else {
        text.push_str(
            "Start the receiver with GENESYS_WEBHOOK_SECRET set to the signature secret you gave.\n",
        );
    }
    text.push_str(&format!(
        "Test it first, with GENESYS_WEBHOOK_SECRET set: genesys-webhook send {url}"
    ));
    Ok(Report::passed(text, doc))
}

async fn update(
    cloud: &GenesysCloud,
    args: &Args,
    id: &str,
    json: bool,
) -> Result<Report, Failure> {
    let mut change = OpenMessagingIntegrationUpdate::new();
    let mut warnings = Vec::new();
    if let Some(url) = &args.webhook_url {
        warnings = check_url(url, args.allow_insecure_url)?;
        change = change.webhook_url(url);
    }
    let secret = signing_secret(args, args.generate_secret)?;
    if let Some((secret, _)) = &secret {
        change = change.signature_secret(secret.as_str());
    }
    if change.is_empty() {
        return Err(Failure::io(
            "--update needs --webhook-url, --generate-secret or a signature secret",
        ));
    }
    progress(json, format!("Updating integration {id}…"));
    let updated = cloud
        .open_messaging()
        .update(id, &change)
        .await
        .map_err(cloud_failure)?;
    let mut text = format!(
        "Updated Open Messaging integration {:?} (id {}){}.\n",
        updated.name,
        updated.id,
        updated
            .outbound_notification_webhook_url
            .as_deref()
            .map(|u| format!(", calling {u}"))
            .unwrap_or_default()
    );
    let mut doc =
        json!({ "action": "updated", "integration": summary(&updated), "warnings": warnings });
    if let Some((secret, true)) = &secret {
        reveal(args, secret, &mut text, &mut doc)?;
    }
    Ok(Report::passed(text.trim_end().to_owned(), doc))
}

/// An integration as printed: its static headers by name only (their values are
/// often credentials).
fn summary(integration: &OpenMessagingIntegration) -> serde_json::Value {
    json!({
        "id": integration.id,
        "name": integration.name,
        "outboundNotificationWebhookUrl": integration.outbound_notification_webhook_url,
        "webhookHeaders": integration
            .webhook_headers
            .as_ref()
            .map(|h| h.keys().cloned().collect::<Vec<_>>()),
        "createStatus": integration.create_status,
        "dateCreated": integration.date_created,
    })
}

async fn list(cloud: &GenesysCloud, json: bool) -> Result<Report, Failure> {
    progress(json, "Listing Open Messaging integrations…");
    let all: Vec<OpenMessagingIntegration> =
        cloud.open_messaging().list().await.map_err(cloud_failure)?;
    let mut text = format!("{} Open Messaging integration(s)", all.len());
    for i in &all {
        let headers = i
            .webhook_headers
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| {
                format!(
                    "  headers: {}",
                    h.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .unwrap_or_default();
        text.push_str(&format!(
            "\n  {}  {:<30}  {}{headers}",
            i.id,
            i.name,
            i.outbound_notification_webhook_url
                .as_deref()
                .unwrap_or("-")
        ));
    }
    Ok(Report::passed(
        text,
        json!({ "action": "list", "integrations": all.iter().map(summary).collect::<Vec<_>>() }),
    ))
}
