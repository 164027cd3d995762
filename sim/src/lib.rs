//! Simulators of Twilio and OpenAI Realtime (being built: see issue 4).
