//! `genesys-webhook sign`: print the signature header for a body.

use std::path::PathBuf;

use genesys_webhook::signature::Scheme;
use serde_json::json;

use crate::input::read_body;
use crate::output::{Failure, Report};
use crate::secret::WebhookSecrets;
use crate::SchemeArg;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    secret: WebhookSecrets,
    /// Which header to produce (by default the one Genesys Cloud sends, as `send` does).
    #[arg(long, value_enum, default_value_t = SchemeArg::OpenMessaging)]
    scheme: SchemeArg,
    /// The body to sign; standard input when `-` or absent.
    file: Option<PathBuf>,
}

pub(crate) async fn run(args: Args, _json: bool) -> Result<Report, Failure> {
    let secret = args.secret.resolve()?.remove(0);
    let body = read_body(args.file.as_ref()).await?;
    let scheme = Scheme::from(args.scheme);
    let value = scheme.sign(&secret, &body);
    Ok(Report::passed(
        format!("{}: {value}", scheme.display_header_name()),
        json!({
            "scheme": scheme.name(),
            "header": scheme.display_header_name(),
            "value": value,
            "bodyBytes": body.len(),
        }),
    ))
}
