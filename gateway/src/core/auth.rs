//! Stream-token and Twilio-signature checks on the upgrade.
