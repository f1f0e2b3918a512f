//! The two LLM endpoints, with the fault applied before the answer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::answer::{self, ChatRequest, TextRequest};
use crate::error::ApiError;
use crate::fault::FaultMode;
use crate::server::AppState;
use crate::state::{Admission, CallKind};
use crate::stream::{self, Protocol};

/// What a `malformed` fault sends: the start of a chat completion, cut off.
const TRUNCATED_JSON: &str = r#"{"choices": ["#;

/// HF's router also serves chat under a model path:
/// `/hf-inference/models/{model}/v1/chat/completions`.
const CHAT_SUFFIX: &str = "/v1/chat/completions";

/// `POST /v1/chat/completions`: an OpenAI-style chat completion.
pub(crate) async fn chat_completions(State(state): State<AppState>, body: Bytes) -> Response {
    answer_chat(&state, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /hf-inference/models/{*model}` and `POST /models/{*model}`: HF text generation
/// (or chat, when the path ends in `/v1/chat/completions`).
pub(crate) async fn text_generation(
    State(state): State<AppState>,
    Path(model): Path<String>,
    body: Bytes,
) -> Response {
    if model.ends_with(CHAT_SUFFIX) {
        return answer_chat(&state, &body)
            .await
            .unwrap_or_else(IntoResponse::into_response);
    }
    answer_text(&state, &model, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn answer_chat(state: &AppState, body: &[u8]) -> Result<Response, ApiError> {
    let admission = state.llm.admit(CallKind::Chat);
    tracing::debug!(
        call = admission.number,
        faulted = admission.faulted,
        "chat call"
    );
    if let Some(response) = apply_fault(state, &admission).await? {
        return Ok(response);
    }
    let request: ChatRequest = parse(body)?;
    if request.messages.is_empty() {
        return Err(ApiError::InvalidRequest(
            "messages must not be empty".to_owned(),
        ));
    }
    tracing::trace!(
        model = %request.model,
        max_tokens = ?request.max_tokens,
        temperature = ?request.temperature,
        "chat request"
    );
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    if request.stream {
        let protocol = Protocol::Chat {
            id: format!("chatcmpl-fake-{}", admission.number),
            model: request.model.clone(),
            created,
        };
        return Ok(stream::respond(
            state,
            protocol,
            &request.prompt(),
            &admission,
        ));
    }
    Ok(Json(answer::chat_completion(&request, admission.number, created)).into_response())
}

async fn answer_text(state: &AppState, model: &str, body: &[u8]) -> Result<Response, ApiError> {
    let admission = state.llm.admit(CallKind::Text);
    tracing::debug!(
        call = admission.number,
        faulted = admission.faulted,
        model,
        "text call"
    );
    if let Some(response) = apply_fault(state, &admission).await? {
        return Ok(response);
    }
    let request: TextRequest = parse(body)?;
    tracing::trace!(parameters = ?request.parameters, "text request");
    if request.stream {
        return Ok(stream::respond(
            state,
            Protocol::Text,
            &request.inputs,
            &admission,
        ));
    }
    Ok(Json(answer::text_generation(&request)).into_response())
}

/// Sleeps the fault's latency, then returns the response that replaces the answer, if any.
///
/// The fault is applied before the body is read, as a real upstream that is down would
/// not look at it either.
async fn apply_fault(
    state: &AppState,
    admission: &Admission,
) -> Result<Option<Response>, ApiError> {
    let fault = &admission.fault;
    if fault.latency_ms > 0 {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(fault.latency_ms)) => {}
            () = state.shutdown.requested() => return Err(ApiError::ShuttingDown),
        }
        if state.llm.frozen() {
            // Frozen while this call was on its way: it never answers either.
            return never_answer(state).await;
        }
    }
    if !admission.faulted {
        return Ok(None);
    }
    match fault.mode {
        // `faulted` is never set in ok mode; answering is the harmless reading anyway.
        FaultMode::Ok => Ok(None),
        FaultMode::Error => Err(ApiError::Injected {
            status: fault.status,
            retry_after_seconds: fault.retry_after_seconds,
            estimated_time: fault.estimated_time,
        }),
        FaultMode::Hang | FaultMode::Freeze => never_answer(state).await,
        FaultMode::Malformed => Ok(Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                TRUNCATED_JSON,
            )
                .into_response(),
        )),
    }
}

/// Never answers: the client gives up first, or the server releases the call on shutdown.
async fn never_answer(state: &AppState) -> Result<Option<Response>, ApiError> {
    state.shutdown.requested().await;
    Err(ApiError::ShuttingDown)
}

/// Parses a JSON body; anything that does not fit the endpoint's format is a 422.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| ApiError::InvalidRequest(err.to_string()))
}
