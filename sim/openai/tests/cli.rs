//! `callway-sim openai` arguments: parsed as documented, turned into a working simulator.

mod common;

use std::time::Duration;

use callway_sim_openai::cli::OpenAiArgs;
use callway_sim_openai::{Fault, OpenAiSim, Refusal};
use clap::{CommandFactory as _, Parser};
use common::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: OpenAiArgs,
}

#[test]
fn help_documents_every_option() {
    let help = Cli::command().render_long_help().to_string();
    for opt in [
        "--listen",
        "--api-key",
        "--echo",
        "--ttfb-ms",
        "--speed",
        "--response-audio",
        "--response-text",
        "--tool-call",
        "--reply",
        "--session-cap-secs",
        "--fault",
        "refuse-handshake=429|quota|500|503[:N]",
        "stall-after=5s[:silent|frozen]",
    ] {
        assert!(help.contains(opt), "help lacks {opt}:\n{help}");
    }
}

#[test]
fn arguments_become_the_configuration() {
    let dir = std::env::temp_dir().join(format!("callway-sim-openai-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("reply.ul");
    std::fs::write(&file, [0x7fu8; 800]).unwrap();
    let cli = Cli::try_parse_from([
        "openai",
        "--listen",
        "127.0.0.1:0",
        "--api-key",
        "sk-cli",
        "--ttfb-ms",
        "5",
        "--speed",
        "0",
        "--response-audio",
        file.to_str().unwrap(),
        "--tool-call",
        r#"2:save_lead:{"first_name":"Zoé"}"#,
        "--session-cap-secs",
        "120",
        "--fault",
        "refuse-handshake=429:1",
        "--fault",
        "close-after=30s:1011",
    ])
    .unwrap();
    let cfg = cli.args.to_config().unwrap();
    assert_eq!(cfg.api_key, "sk-cli");
    assert_eq!(
        (cfg.ttfb, cfg.speed, cfg.session_cap),
        (Duration::from_millis(5), None, Duration::from_secs(120))
    );
    assert_eq!(cfg.script.replies[0].audio.to_ulaw(), vec![0x7f; 800]);
    assert_eq!(cfg.script.tool_calls[0].on_user_turn, 2);
    assert_eq!(
        cfg.faults,
        [
            Fault::RefuseHandshake { refusal: Refusal::RateLimited, times: Some(1) },
            Fault::CloseAfter { after: Duration::from_secs(30), code: 1011 }
        ]
    );
    assert!(Cli::try_parse_from(["openai", "--fault", "explode=now"]).is_err());
    let bad_tool = Cli::try_parse_from(["openai", "--tool-call", "2:save_lead:{nope"]).unwrap();
    assert!(bad_tool.args.to_config().is_err());
    let missing = Cli::try_parse_from(["openai", "--response-audio", "/nonexistent/x.ul"]).unwrap();
    assert!(missing.args.to_config().is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn replies_tell_a_story_from_files_and_texts() {
    let dir = std::env::temp_dir().join(format!("callway-sim-openai-story-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ul = dir.join("a.ul");
    std::fs::write(&ul, [0x7fu8; 160]).unwrap();
    // A 16 kHz WAV of 100 ms: 800 μ-law bytes once resampled.
    let wav = dir.join("b.wav");
    let bytes = callway_sim_openai::audio::wav_bytes(&[0; 1600], 16_000);
    std::fs::write(&wav, bytes).unwrap();
    let a = format!("{}=Bonjour.", ul.display());
    let b = format!("{}=Merci, c'est noté.", wav.display());
    let cli =
        Cli::try_parse_from(["openai", "--reply", &a, "--reply", &b, "--reply", "Je vous appelle."]).unwrap();
    let cfg = cli.args.to_config().unwrap();
    let replies = &cfg.script.replies;
    assert_eq!(replies.len(), 3);
    assert_eq!((replies[0].transcript.as_str(), replies[0].audio.to_ulaw().len()), ("Bonjour.", 160));
    assert_eq!(
        (replies[1].transcript.as_str(), replies[1].audio.to_ulaw().len()),
        ("Merci, c'est noté.", 800)
    );
    assert_eq!(replies[2].transcript, "Je vous appelle.");
    assert_eq!(replies[2].audio.to_ulaw().len(), 8000, "a tone of at least a second");
    let bad = format!("{}=x", dir.join("missing.wav").display());
    assert!(Cli::try_parse_from(["openai", "--reply", &bad]).unwrap().args.to_config().is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn an_echo_configuration_from_the_command_line_serves() {
    let cli = Cli::try_parse_from(["openai", "--listen", "127.0.0.1:0", "--echo"]).unwrap();
    let sim = OpenAiSim::spawn(cli.args.to_config().unwrap()).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    c.append_ulaw(&[1, 2, 3, 4], 4).await;
    assert_eq!(audio_of(&[c.expect("response.output_audio.delta").await]), [1, 2, 3, 4]);
    sim.shutdown().await;
}
