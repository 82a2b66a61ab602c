//! `inferperf send-one`: send one request (`/generate`, or an OpenAI route with `--backend`) and
//! print latency and speed, optionally inside a profile window (`python -m sglang.test.send_one`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use std::time::Duration;

use inferperf_profiler::client::{self, remote, SendOneApi, SendOneOptions, SEND_ONE_PROMPT};
use inferperf_protocol::profile::ProfileReqInput;

#[derive(clap::Args, Debug)]
pub struct SendOneArgs {
    #[arg(long, default_value = "localhost")]
    pub host: String,
    #[arg(long, default_value_t = 30000)]
    pub port: u16,
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// With --batch-size > 1: prefix each prompt with "Test case {i}: ".
    #[arg(long)]
    pub different_prompts: bool,
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    #[arg(long, default_value_t = 512)]
    pub max_new_tokens: usize,
    #[arg(long, default_value_t = 0.0)]
    pub frequency_penalty: f64,
    #[arg(long, default_value_t = 0.0)]
    pub presence_penalty: f64,
    /// Ask for JSON output (`json_schema: "$$ANY$$"`) with a JSON prompt.
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub return_logprob: bool,
    #[arg(long, default_value = SEND_ONE_PROMPT)]
    pub prompt: String,
    /// Send SGLang's example image URL (multimodal servers only).
    #[arg(long)]
    pub image: bool,
    #[arg(long)]
    pub many_images: bool,
    #[arg(long)]
    pub stream: bool,
    /// Start a profile window of --profile-steps steps before sending.
    #[arg(long)]
    pub profile: bool,
    #[arg(long, default_value_t = 3)]
    pub profile_steps: u64,
    #[arg(long)]
    pub profile_by_stage: bool,
    /// API to send with, as `bench serving --backend`: `sglang` (native `/generate`, send_one's
    /// own), `vllm`/`openai` (`/v1/completions`), `vllm-chat`/`openai-chat`
    /// (`/v1/chat/completions`).
    #[arg(long, default_value = "sglang", value_parser = ["sglang", "sglang-native", "sglang-oai", "vllm", "openai", "sglang-oai-chat", "vllm-chat", "openai-chat"])]
    pub backend: String,
    /// Model name for the OpenAI backends (default: the first of `/v1/models`).
    #[arg(long)]
    pub model: Option<String>,
    /// How long `/stop_profile` may take, for servers inferperf has to stop itself (vLLM).
    #[arg(long, default_value_t = 600.0, value_parser = super::value_parsers::non_negative_seconds)]
    pub stop_timeout_sec: f64,
}

impl SendOneArgs {
    fn api(&self) -> SendOneApi {
        match self.backend.as_str() {
            "sglang" | "sglang-native" => SendOneApi::Generate,
            b if b.ends_with("-chat") => SendOneApi::Chat,
            _ => SendOneApi::Completions,
        }
    }
}

pub fn run(args: SendOneArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(send(args))
}

async fn send(args: SendOneArgs) -> anyhow::Result<ExitCode> {
    let base_url = format!("http://{}:{}", args.host, args.port);
    let http = client::http_client().context("building the HTTP client")?;
    let mut window = None;
    if args.profile {
        println!("Running profiler with {} steps...", args.profile_steps);
        let dir = client::timestamped_output_dir(None, None)?;
        let body = ProfileReqInput {
            output_dir: Some(dir.display().to_string()),
            num_steps: Some(args.profile_steps),
            // send_one asks for CPU and GPU; the reference server only has CPU.
            activities: Some(vec!["CPU".to_string()]),
            profile_by_stage: args.profile_by_stage,
            ..Default::default()
        };
        let (w, notes) =
            remote::open_window(&http, &client::ProfileTarget::single(&base_url), &body)
                .await
                .context("starting the profile window")?;
        for n in notes {
            println!("Note: {n}");
        }
        match w.location {
            remote::TraceLocation::Sent(_) => {
                println!("Dump profiling traces to {}", dir.display())
            }
            remote::TraceLocation::ServerDecides { .. } => {
                let _ = std::fs::remove_dir(&dir);
                println!("{}", w.describe_location());
            }
        }
        window = Some(w);
    }
    let opts = SendOneOptions {
        prompt: args.prompt.clone(),
        batch_size: args.batch_size,
        different_prompts: args.different_prompts,
        temperature: args.temperature,
        max_new_tokens: args.max_new_tokens,
        frequency_penalty: args.frequency_penalty,
        presence_penalty: args.presence_penalty,
        json: args.json,
        return_logprob: args.return_logprob,
        image: args.image,
        many_images: args.many_images,
        stream: args.stream,
    };
    let mut stdout = std::io::stdout();
    let print = |delta: &str| {
        let _ = write!(stdout, "{delta}");
        let _ = stdout.flush();
    };
    let result = match args.api() {
        SendOneApi::Generate => client::send_one(&http, &base_url, &opts, print).await,
        api => {
            client::send_one_openai(&http, &base_url, api, args.model.as_deref(), &opts, print)
                .await
        }
    };
    // The window closes whatever the request did: a server that does not end it by itself
    // (vLLM) is stopped here, never left open.
    if let Some(w) = &window {
        if w.needs_stop {
            w.close(&http, Duration::from_secs_f64(args.stop_timeout_sec))
                .await
                .context("stopping the profile window")?;
            println!("Profiler stopped.");
        }
    }
    let result = result?;
    if !args.stream {
        println!("{}", result.text);
    }
    println!();
    println!(
        "{}",
        pretty_table(
            &["Latency (s)", "Tokens", "Acc Length", "Speed (token/s)"],
            &[
                format!("{:.3}", result.latency_s),
                result.tokens.to_string(),
                format!("{:.3}", result.acc_length),
                format!("{:.2}", result.speed),
            ],
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// tabulate's `pretty` format for one row: `+---+` rules, centered cells, one space of padding.
fn pretty_table(headers: &[&str], row: &[String]) -> String {
    let widths: Vec<usize> = headers
        .iter()
        .zip(row)
        .map(|(h, v)| h.chars().count().max(v.chars().count()))
        .collect();
    let rule = {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s
    };
    let line = |cells: Vec<&str>| {
        let mut s = String::from("|");
        for (cell, w) in cells.into_iter().zip(&widths) {
            let pad = w - cell.chars().count();
            let left = pad / 2;
            s.push_str(&format!(
                " {}{}{} |",
                " ".repeat(left),
                cell,
                " ".repeat(pad - left)
            ));
        }
        s
    };
    [
        rule.clone(),
        line(headers.to_vec()),
        rule.clone(),
        line(row.iter().map(String::as_str).collect()),
        rule,
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_table_matches_tabulate_layout() {
        let t = pretty_table(
            &["Tokens", "Speed (token/s)"],
            &["12".into(), "3.50".into()],
        );
        assert_eq!(
            t,
            "+--------+-----------------+\n\
             | Tokens | Speed (token/s) |\n\
             +--------+-----------------+\n\
             |   12   |      3.50       |\n\
             +--------+-----------------+"
        );
    }
}
