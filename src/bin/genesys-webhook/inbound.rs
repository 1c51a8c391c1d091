//! `genesys-webhook inbound`: the customer's side of an Open Messaging integration,
//! sent to the Platform API as a real integration sends it.

use genesys_webhook::cloud::{
    ButtonResponseKind, InboundEvent, InboundMessage, InboundReceipt, InboundReceiptStatus,
    InboundStructuredResponse, MediaType,
};
use genesys_webhook::openmessaging::ReasonCode;
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
    /// A text, or a file, from the customer.
    Message {
        /// The text (with --attachment: its caption).
        #[arg(long, required_unless_present = "attachment")]
        text: Option<String>,
        /// The customer's id on your platform.
        #[arg(long = "from")]
        from: String,
        /// The customer's display name.
        #[arg(long)]
        nickname: Option<String>,
        /// The message's id on your platform (channel.messageId), so that a retry by
        /// hand sends the same message instead of a new one (default: random).
        #[arg(long)]
        message_id: Option<String>,
        /// A file Genesys fetches from this URL.
        #[arg(long, requires = "media_type")]
        attachment: Option<String>,
        /// With --attachment: Image, Video, Audio, File or Link (any case).
        #[arg(long)]
        media_type: Option<MediaType>,
        /// With --attachment: its MIME type (default application/octet-stream).
        #[arg(long, requires = "attachment")]
        mime: Option<String>,
        /// With --attachment: its file name.
        #[arg(long, requires = "attachment")]
        filename: Option<String>,
        /// Ask Genesys to name the conversation in its answer.
        #[arg(long)]
        prefetch_conversation_id: bool,
    },
    /// A receipt for an outbound message.
    Receipt {
        /// The outbound message's `id`, as the webhook delivered it.
        #[arg(long)]
        message_id: String,
        /// Sent, Delivered, Failed, Published or Removed, in any case (there is no Read).
        #[arg(long, default_value = "Delivered")]
        status: InboundReceiptStatus,
        /// The customer the outbound message went to.
        #[arg(long = "to")]
        to: String,
        /// With Failed: the reason's code (MessageExpired, RateLimited, GeneralError, …).
        #[arg(long)]
        reason: Option<String>,
        /// With --reason: its description.
        #[arg(long, requires = "reason", default_value = "")]
        reason_message: String,
        /// No further receipt follows for this message (isFinalReceipt).
        #[arg(long = "final")]
        is_final: bool,
    },
    /// The customer's answer to a quick reply or a button of an outbound message.
    ButtonResponse {
        /// The customer's id on your platform.
        #[arg(long = "from")]
        from: String,
        /// The id of the outbound structured message answered.
        #[arg(long)]
        originating_message_id: String,
        /// The label chosen.
        #[arg(long)]
        text: String,
        /// Its payload.
        #[arg(long)]
        payload: String,
        /// quick-reply (default) or button.
        #[arg(long, value_enum, default_value_t = Kind::QuickReply)]
        kind: Kind,
    },
    /// The customer started typing.
    Typing {
        /// The customer's id on your platform.
        #[arg(long = "from")]
        from: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    QuickReply,
    Button,
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
            message_id,
            attachment,
            media_type,
            mime,
            filename,
            prefetch_conversation_id,
        } => {
            inbound = inbound.prefetch_conversation_id(prefetch_conversation_id);
            let mut message = match (attachment, media_type) {
                (Some(url), Some(media_type)) => {
                    let mime = mime.unwrap_or_else(|| "application/octet-stream".to_owned());
                    let mut message = InboundMessage::attachment(&from, url, media_type, mime);
                    if let Some(name) = filename {
                        message = message.filename(name);
                    }
                    match text {
                        Some(text) => message.caption(text),
                        None => message,
                    }
                }
                _ => InboundMessage::text(&from, text.unwrap_or_default()),
            };
            if let Some(nickname) = nickname {
                message = message.nickname(nickname);
            }
            if let Some(id) = message_id {
                message = message.message_id(id);
            }
            progress(json, format!("sending a message from {from}"));
            ("message", inbound.message(&message).await)
        }
        What::Receipt {
            message_id,
            status,
            to,
            reason,
            reason_message,
            is_final,
        } => {
            let mut receipt = InboundReceipt::new(message_id, &to, status);
            if let Some(code) = reason {
                receipt = receipt.reason(ReasonCode::from(code.as_str()), reason_message);
            }
            if is_final {
                receipt = receipt.final_receipt(true);
            }
            ("receipt", inbound.receipt(&receipt).await)
        }
        What::ButtonResponse {
            from,
            originating_message_id,
            text,
            payload,
            kind,
        } => {
            let kind = match kind {
                Kind::QuickReply => ButtonResponseKind::QuickReply,
                Kind::Button => ButtonResponseKind::Button,
            };
            let answer =
                InboundStructuredResponse::new(&from, originating_message_id, kind, text, payload);
            (
                "structured response",
                inbound.structured_response(&answer).await,
            )
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
