//! `genesys-webhook setup`: the Open Messaging integration that makes Genesys Cloud
//! call the receiver, signed with `X-Hub-Signature-256`.

use base64::Engine as _;
use genesys_webhook::cloud::{
    CloudError, GenesysCloud, NewOpenMessagingIntegration, OpenMessagingIntegration,
    OpenMessagingIntegrationUpdate, Region,
};
use serde_json::json;

use crate::input::parse_header;
use crate::output::{progress, Failure, Report};

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("action").args(["list", "update", "delete"]))]
pub(crate) struct Args {
    /// OAuth client id (client credentials grant).
    #[arg(long, env = "GENESYS_CLIENT_ID")]
    client_id: Option<String>,
    /// OAuth client secret.
    #[arg(long, env = "GENESYS_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Region name (eu-west-1) or domain (mypurecloud.ie).
    #[arg(long, env = "GENESYS_REGION")]
    region: Option<String>,
    /// Platform API base URL, overriding the region's.
    #[arg(long, env = "GENESYS_API_BASE")]
    api_base: Option<String>,
    /// Login base URL, overriding the region's (or the one derived from --api-base).
    #[arg(long, env = "GENESYS_LOGIN_BASE")]
    login_base: Option<String>,
    /// The receiver's public URL (Genesys calls only HTTPS on port 443).
    #[arg(long)]
    webhook_url: Option<String>,
    /// The integration's name.
    #[arg(long, default_value = "genesys-webhook receiver")]
    name: String,
    /// The signing secret; a random 256-bit one is generated when absent.
    #[arg(long)]
    signature_secret: Option<String>,
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
    let cloud = client(&args)?;
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

fn client(args: &Args) -> Result<GenesysCloud, Failure> {
    let client_id = args.client_id.as_deref().ok_or_else(|| {
        Failure::io("no OAuth client id: pass --client-id or set GENESYS_CLIENT_ID")
    })?;
    let client_secret = args.client_secret.as_deref().ok_or_else(|| {
        Failure::io("no OAuth client secret: pass --client-secret or set GENESYS_CLIENT_SECRET")
    })?;
    let mut builder = GenesysCloud::builder().client_credentials(client_id, client_secret);
    if let Some(region) = &args.region {
        let region: Region = region
            .parse()
            .map_err(|e: CloudError| Failure::io(e.to_string()))?;
        builder = builder.region(region);
    }
    if let Some(base) = &args.api_base {
        builder = builder.api_base(base);
    }
    if let Some(base) = &args.login_base {
        builder = builder.login_base(base);
    }
    builder.build().map_err(|e| Failure::io(e.to_string()))
}

/// API refusals fail the check (exit 1); anything else is an I/O or usage error (2).
fn cloud_failure(error: CloudError) -> Failure {
    match error {
        CloudError::Api(_)
        | CloudError::Authentication(_)
        | CloudError::RetryAfterTooLong { .. } => Failure::check(error.to_string()),
        _ => Failure::io(error.to_string()),
    }
}

/// Genesys calls only HTTPS URLs on port 443.
fn url_warnings(url: &str) -> Vec<String> {
    match reqwest::Url::parse(url) {
        Err(error) => vec![format!(
            "{url:?} is not a valid URL ({error}): Genesys cannot call it"
        )],
        Ok(parsed) if parsed.scheme() != "https" => vec![format!(
            "{url} is not HTTPS: Genesys Cloud only calls HTTPS webhooks on port 443"
        )],
        Ok(parsed) if parsed.port_or_known_default() != Some(443) => vec![format!(
            "{url} uses port {}: Genesys Cloud only calls HTTPS webhooks on port 443",
            parsed.port_or_known_default().unwrap_or(0)
        )],
        Ok(_) => Vec::new(),
    }
}

fn warn_all(warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}

/// 256 random bits, URL-safe base64 (43 characters).
fn generate_secret() -> Result<String, Failure> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Failure::io(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

async fn create(cloud: &GenesysCloud, args: &Args, json: bool) -> Result<Report, Failure> {
    let url = args.webhook_url.as_deref().ok_or_else(|| {
        Failure::io("--webhook-url is required to create an integration (or use --list, --update ID, --delete ID)")
    })?;
    let warnings = url_warnings(url);
    warn_all(&warnings);
    let (secret, generated) = match &args.signature_secret {
        Some(secret) if !secret.trim().is_empty() => (secret.clone(), false),
        Some(_) => return Err(Failure::io("--signature-secret is blank")),
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
    let created = cloud
        .open_messaging()
        .create(&new)
        .await
        .map_err(cloud_failure)?;
    let mut text = format!(
        "Created Open Messaging integration {:?} (id {}), calling {url}.\n",
        created.name, created.id
    );
    if generated {
        text.push_str(
            "Genesys Cloud signs every webhook with this secret. It is shown now only; keep it safe.\n\
             Start the receiver with:\n\n",
        );
        text.push_str(&format!(
            "  GENESYS_WEBHOOK_SECRET={secret} cargo run --example receiver\n"
        ));
    } else {
        text.push_str(
            "Start the receiver with GENESYS_WEBHOOK_SECRET set to the --signature-secret you gave.\n",
        );
    }
    text.push_str(&format!(
        "Test it first: genesys-webhook send {url} --scheme open-messaging --secret \"$GENESYS_WEBHOOK_SECRET\""
    ));
    let mut doc = json!({
        "action": "created",
        "integration": created,
        "warnings": warnings,
    });
    if generated {
        doc["signatureSecret"] = secret.into();
        doc["env"] = format!(
            "GENESYS_WEBHOOK_SECRET={}",
            doc["signatureSecret"].as_str().unwrap_or_default()
        )
        .into();
    }
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
        warnings = url_warnings(url);
        warn_all(&warnings);
        change = change.webhook_url(url);
    }
    if let Some(secret) = &args.signature_secret {
        change = change.signature_secret(secret);
    }
    if change.is_empty() {
        return Err(Failure::io(
            "--update needs --webhook-url and/or --signature-secret",
        ));
    }
    progress(json, format!("Updating integration {id}…"));
    let updated = cloud
        .open_messaging()
        .update(id, &change)
        .await
        .map_err(cloud_failure)?;
    Ok(Report::passed(
        format!(
            "Updated Open Messaging integration {:?} (id {}){}.",
            updated.name,
            updated.id,
            updated
                .outbound_notification_webhook_url
                .as_deref()
                .map(|u| format!(", calling {u}"))
                .unwrap_or_default()
        ),
        json!({ "action": "updated", "integration": updated, "warnings": warnings }),
    ))
}

async fn list(cloud: &GenesysCloud, json: bool) -> Result<Report, Failure> {
    progress(json, "Listing Open Messaging integrations…");
    let all: Vec<OpenMessagingIntegration> =
        cloud.open_messaging().list().await.map_err(cloud_failure)?;
    let mut text = format!("{} Open Messaging integration(s)", all.len());
    for i in &all {
        text.push_str(&format!(
            "\n  {}  {:<30}  {}",
            i.id,
            i.name,
            i.outbound_notification_webhook_url
                .as_deref()
                .unwrap_or("-")
        ));
    }
    Ok(Report::passed(
        text,
        json!({ "action": "list", "integrations": all }),
    ))
}
