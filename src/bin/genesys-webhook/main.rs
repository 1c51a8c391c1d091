//! `genesys-webhook`: sign, verify and send test webhooks, register the receiver
//! with Genesys Cloud as an Open Messaging integration, look into its inbox, play
//! Genesys against AudioHook servers and bots, list Genesys' source addresses, and
//! `serve`: relay verified, stored webhooks to an application in any language.
//!
//! Exit codes: 0 success, 1 the check failed (a mismatch, a non-2xx answer), 2 usage
//! or I/O error.

#[allow(dead_code, unreachable_pub)]
#[path = "../../../examples/receiver/app.rs"]
mod app;
mod audiohook;
mod audiohook_load;
mod bot;
mod credentials;
mod forward;
mod inbound;
mod inbox;
mod input;
mod ipranges;
mod output;
#[allow(dead_code)]
#[path = "../../../examples/common/process.rs"]
mod process;
mod secret;
mod send;
mod serve;
#[allow(dead_code, unreachable_pub)]
#[path = "../../../examples/receiver/settings.rs"]
mod settings;
mod setup;
mod sign;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use genesys_webhook::signature::Scheme;

use crate::output::Failure;

#[derive(Debug, Parser)]
#[command(
    name = "genesys-webhook",
    version,
    about = "Sign, verify and send Genesys Cloud webhooks; register the receiver with Genesys Cloud",
    after_help = "Exit codes: 0 success, 1 the check failed (a mismatch, a non-2xx answer), 2 usage or I/O error."
)]
struct Cli {
    /// Print machine-readable JSON instead of text for people.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the signature header for a body.
    Sign(sign::Args),
    /// Check a signature header against a body, and explain a mismatch.
    Verify(verify::Args),
    /// Post a signed body to a receiver and show its answer.
    Send(send::Args),
    /// Create, list, update or delete the Open Messaging integration that calls the receiver.
    Setup(Box<setup::Args>),
    /// Send the customer's side into an Open Messaging integration: a message, a
    /// receipt, typing.
    Inbound(Box<inbound::Args>),
    /// Look into the receiver's inbox: counts, events, dead letters; retry or purge them.
    Inbox(inbox::Args),
    /// Simulate Genesys Cloud against an AudioHook server: a signed upgrade, then open,
    /// audio, ping and close.
    Audiohook(Box<audiohook::Args>),
    /// Load an AudioHook server: many signed sessions streaming stereo audio at
    /// real-time pace, with pings; reports who kept real time and the round trips.
    AudiohookLoad(Box<audiohook_load::Args>),
    /// Play Genesys Cloud's Digital Bot Connector against a bot: send one turn with the
    /// integration's credential header and print the answer.
    Bot(Box<bot::Args>),
    /// Print the address ranges Genesys Cloud calls from, by service.
    Ipranges(Box<ipranges::Args>),
    /// Receive Genesys' webhooks, verify and store them, and forward each to your
    /// application at least once, in order per conversation.
    Serve(Box<serve::Args>),
}

/// The signature scheme on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SchemeArg {
    /// `X-Genesys-Signature: <hex>`.
    Genesys,
    /// `X-Hub-Signature-256: sha256=<base64>`, what Genesys Cloud sends.
    OpenMessaging,
}

impl From<SchemeArg> for Scheme {
    fn from(scheme: SchemeArg) -> Self {
        match scheme {
            SchemeArg::Genesys => Scheme::XGenesysSignature,
            SchemeArg::OpenMessaging => Scheme::OpenMessaging,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Serve(args) = cli.command {
        return serve_main(*args);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,genesys_webhook::cloud=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return Failure::io(format!("could not start: {error}")).report(cli.json),
    };
    let json = cli.json;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Sign(args) => sign::run(args, json).await,
            Command::Verify(args) => verify::run(args, json).await,
            Command::Send(args) => send::run(args, json).await,
            Command::Setup(args) => setup::run(*args, json).await,
            Command::Inbox(args) => inbox::run(args, json).await,
            Command::Inbound(args) => inbound::run(*args, json).await,
            Command::Audiohook(args) => audiohook::run(*args, json).await,
            Command::AudiohookLoad(args) => audiohook_load::run(*args, json).await,
            Command::Bot(args) => bot::run(*args, json).await,
            Command::Ipranges(args) => ipranges::run(*args, json).await,
            Command::Serve(_) => unreachable!("served above"),
        }
    });
    match result {
        Ok(report) => report.print(json),
        Err(failure) => failure.report(json),
    }
}

/// `serve`: logs as the receiver's (standard output, `GENESYS_LOG_FORMAT`), exit code 1
/// with the error on standard error.
fn serve_main(args: serve::Args) -> ExitCode {
    process::init_tracing_as(args.json_logs());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(serve::run(args)),
        Err(error) => Err(format!("could not start: {error}").into()),
    };
    process::exit(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_the_arguments_shows_no_secret() {
        let cli = Cli::try_parse_from([
            "genesys-webhook",
            "setup",
            "--list",
            "--client-id",
            "id",
            "--client-secret",
            "oauth-s3cret",
            "--signature-secret",
            "webhook-s3cret",
        ])
        .unwrap();
        let debug = format!("{cli:?}");
        assert!(
            !debug.contains("oauth-s3cret") && !debug.contains("webhook-s3cret"),
            "{debug}"
        );
        let cli =
            Cli::try_parse_from(["genesys-webhook", "sign", "--secret", "sign-s3cret"]).unwrap();
        assert!(!format!("{cli:?}").contains("sign-s3cret"));
        let cli = Cli::try_parse_from([
            "genesys-webhook",
            "bot",
            "send",
            "--url",
            "http://127.0.0.1:5001/botconnector",
            "--bot",
            "demo-bot",
            "--text",
            "hi",
            "--header",
            "X-Bot-Connector-Secret=bot-s3cret",
        ])
        .unwrap();
        assert!(!format!("{cli:?}").contains("bot-s3cret"));
    }
}
