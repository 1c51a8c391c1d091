//! `genesys-webhook inbound`: the customer's side of an Open Messaging integration,
//! sent to the Platform API as a real integration sends it.

use genesys_webhook::cloud::{InboundEvent, InboundMessage, InboundReceipt};
use genesys_webhook::openmessaging::ReceiptStatus;
use serde_json::json;

use crate::credentials::Credentials;
use crate::output::{progress, Failure, Report};
use crate::setup::cloud_failure;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Open Messaging integration's id.
    #[arg(long = "integration", env = "GENESYS_INTEGRATION_ID", global = true)]
    integration: Option<String>,
    #[command(flatten)]
    credentials: Credentials,
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// A text from the customer.
    Message {
        /// The text.
        #[arg(long)]
        text: String,
        /// The customer's id on your platform.
        #[arg(long = "from")]
        from: String,
        /// The customer's display name.
        #[arg(long)]
        nickname: Option<String>,
        /// Ask Genesys to name the conversation in its answer.
        #[arg(long)]
        prefetch_conversation_id: bool,
    },
    /// A receipt for an outbound message.
    Receipt {
        /// The outbound message's `id`, as the webhook delivered it.
        #[arg(long)]
        message_id: String,
        /// The status.
        #[arg(long, value_enum, default_value_t = Status::Delivered)]
        status: Status,
        /// The customer the outbound message went to.
        #[arg(long = "to")]
        to: String,
        /// With Failed: the reason's code.
        #[arg(long)]
        reason: Option<String>,
    },
    /// The customer started typing.
    Typing {
        /// The customer's id on your platform.
        #[arg(long = "from")]
        from: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Status {
    Delivered,
    Read,
    Failed,
}

pub(crate) async fn run(args: Args, json: bool) -> Result<Report, Failure> {
    let integration = args
        .integration
        .as_deref()
        .filter(|id| !id.trim().is_empty());
    let Some(integration) = integration else {
        return Err(Failure::io(
            "missing the Open Messaging integration (--integration or GENESYS_INTEGRATION_ID)",
        ));
    };
    let cloud = args.credentials.client()?;
    let mut inbound = cloud
        .inbound(integration)
        .map_err(|e| Failure::io(e.to_string()))?;
    let (kind, answer) = match args.what {
        What::Message {
            text,
            from,
            nickname,
            prefetch_conversation_id,
        } => {
            inbound = inbound.prefetch_conversation_id(prefetch_conversation_id);
            let mut message = InboundMessage::text(&from, text);
            if let Some(nickname) = nickname {
                message = message.nickname(nickname);
            }
            progress(json, format!("sending a message from {from}"));
            ("message", inbound.message(&message).await)
        }
        What::Receipt {
            message_id,
            status,
            to,
            reason,
        } => {
            let status = match status {
                Status::Delivered => ReceiptStatus::Delivered,
                Status::Read => ReceiptStatus::Read,
                Status::Failed => ReceiptStatus::Failed,
            };
            let mut receipt = InboundReceipt::new(message_id, &to, status);
            if let Some(code) = reason {
                receipt = receipt.reason(code, "");
            }
            ("receipt", inbound.receipt(&receipt).await)
        }
        What::Typing { from } => (
            "event",
            inbound.event(&InboundEvent::typing_on(&from)).await,
        ),
    };
    let answer = answer.map_err(cloud_failure)?;
    let doc = json!({
        "sent": kind,
        "id": answer.id,
        "conversationId": answer.conversation_id,
        "answer": answer.body,
    });
    let mut text = format!("{kind} accepted by Genesys Cloud");
    if let Some(id) = &answer.id {
        text.push_str(&format!(" (id {id})"));
    }
    if let Some(conversation) = &answer.conversation_id {
        text.push_str(&format!("; conversation {conversation}"));
    }
    Ok(Report::passed(text, doc))
}
