//! Phone numbers: parsing what a prospect typed or said into E.164, and deciding whether we may
//! call it. Pure functions (no I/O), so every rule is unit-tested against the vectors of
//! `../shared/testing.md`.
//!
//! Two steps, on purpose (protocols.md fact 5): `phonenumber::parse` succeeding says nothing
//! about validity, so [`parse_phone`] also requires `is_valid`, and only then formats E.164.
//! [`CallPolicy::check`] is the outbound-call guard: country allow-list, no premium-rate or
//! shared-cost numbers.

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, PhoneNumber, Type};

/// Member states of the European Union: the default outbound allow-list.
pub const EU_COUNTRIES: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT",
    "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
];

/// A number that parsed and is valid for its region.
#[derive(Debug, Clone)]
pub struct Phone {
    /// `+33612345678`.
    pub e164: String,
    /// ISO 3166 region the number belongs to, when the metadata knows it.
    pub region: Option<Id>,
    /// Mobile, fixed line, premium rate…
    pub kind: Type,
}

/// Why a number was refused. `Display` is French and safe to say back to the prospect (the
/// model reads it aloud); [`PhoneError::code`] is the stable machine code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// Empty or not a phone number at all.
    #[error("Je n'ai pas compris ce numéro de téléphone. Pouvez-vous le redire chiffre par chiffre ?")]
    Unreadable,
    /// Parses, but no such number exists in its region (too short, wrong prefix…).
    #[error(
        "Le numéro semble incomplet ou incorrect. Pouvez-vous le redire, en commençant par l'indicatif du pays s'il n'est pas français ?"
    )]
    Invalid,
    /// A valid number in a country we do not call.
    #[error("Désolé, nous ne pouvons appeler que des numéros de l'Union européenne.")]
    CountryNotAllowed {
        /// The number's region (`US`, `GB`…), or `??`.
        region: String,
    },
    /// Premium-rate or shared-cost: never called (cost, fraud).
    #[error(
        "Nous ne pouvons pas appeler un numéro surtaxé ou à coût partagé. Avez-vous un numéro de mobile ?"
    )]
    Surcharged,
    /// Not a number a person answers (pager, voicemail access, short code…).
    #[error("Ce numéro ne peut pas recevoir d'appel. Avez-vous un numéro de mobile ou de ligne fixe ?")]
    NotCallable,
}

impl PhoneError {
    /// Stable machine code for JSON answers and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            PhoneError::Unreadable => "phone_unreadable",
            PhoneError::Invalid => "phone_invalid",
            PhoneError::CountryNotAllowed { .. } => "phone_country_not_allowed",
            PhoneError::Surcharged => "phone_premium_rate",
            PhoneError::NotCallable => "phone_not_callable",
        }
    }
}

/// Longest input accepted before parsing (the parser is not fed unbounded text).
pub const MAX_INPUT_LEN: usize = 64;

/// Parses `input` with `default_region` for numbers written without `+`, requires validity,
/// and returns the E.164 form. An explicit `+` (or `00`) wins over the default region.
pub fn parse_phone(input: &str, default_region: Id) -> Result<Phone, PhoneError> {
    let input = input.trim();
    if input.is_empty() || input.len() > MAX_INPUT_LEN {
        return Err(PhoneError::Unreadable);
    }
    let number = phonenumber::parse(Some(default_region), input).map_err(|_| PhoneError::Unreadable)?;
    if !number.is_valid() {
        return Err(PhoneError::Invalid);
    }
    Ok(from_valid(&number))
}

fn from_valid(number: &PhoneNumber) -> Phone {
    Phone {
        e164: number.format().mode(Mode::E164).to_string(),
        region: number.country().id(),
        kind: number.number_type(&DATABASE),
    }
}

/// Which numbers outbound calls may go to.
#[derive(Debug, Clone)]
pub struct CallPolicy {
    /// Regions we call (ISO 3166 alpha-2).
    pub allowed_regions: Vec<Id>,
}

impl CallPolicy {
    /// The default: EU member states.
    pub fn eu() -> Self {
        Self { allowed_regions: EU_COUNTRIES.iter().filter_map(|c| c.parse().ok()).collect() }
    }

    /// Whether we may place a call to `phone`.
    pub fn check(&self, phone: &Phone) -> Result<(), PhoneError> {
        match phone.kind {
            Type::PremiumRate | Type::SharedCost => return Err(PhoneError::Surcharged),
            Type::Mobile
            | Type::FixedLine
            | Type::FixedLineOrMobile
            | Type::TollFree
            | Type::PersonalNumber
            | Type::Voip
            | Type::Uan
            | Type::StandardRate => {}
            _ => return Err(PhoneError::NotCallable),
        }
        match phone.region {
            Some(r) if self.allowed_regions.contains(&r) => Ok(()),
            r => Err(PhoneError::CountryNotAllowed {
                region: r.map(|r| r.as_ref().to_owned()).unwrap_or_else(|| "??".into()),
            }),
        }
    }
}

/// Masks a number for logs: country code and last two digits kept (`+33******78`); the same
/// mask every Callway binary applies ([`callway_logs::mask_phone`]).
pub fn mask(e164: &str) -> String {
    callway_logs::mask_phone(e164)
}

#[cfg(test)]
mod tests {
    //! The phone vectors of `../shared/testing.md`, row by row.
    use super::*;

    fn id(s: &str) -> Id {
        s.parse().unwrap()
    }

    #[track_caller]
    fn ok(region: &str, input: &str, e164: &str, kind: Type) {
        let p = parse_phone(input, id(region)).unwrap_or_else(|e| panic!("{input}: {e:?}"));
        assert_eq!(p.e164, e164, "{input}");
        assert_eq!(p.kind, kind, "{input}");
    }

    #[test]
    fn valid_vectors() {
        ok("FR", "06 12 34 56 78", "+33612345678", Type::Mobile);
        ok("FR", "+33 (0)6 12 34 56 78", "+33612345678", Type::Mobile);
        ok("FR", "0033612345678", "+33612345678", Type::Mobile);
        ok("FR", "tel:+33-6-12-34-56-78", "+33612345678", Type::Mobile);
        ok("FR", "01 23 45 67 89", "+33123456789", Type::FixedLine);
        ok("FR", "0800 123 456", "+33800123456", Type::TollFree);
        ok("FR", "0899 12 34 56", "+33899123456", Type::PremiumRate);
        ok("FR", "0820 12 34 56", "+33820123456", Type::SharedCost);
        ok("BE", "0470 12 34 56", "+32470123456", Type::Mobile);
        ok("DE", "0151 23456789", "+4915123456789", Type::Mobile);
        ok("GB", "07400 123456", "+447400123456", Type::Mobile);
        ok("FR", "+44 909 8790000", "+449098790000", Type::PremiumRate);
        let us = parse_phone("+1 202 555 0143", id("FR")).unwrap();
        assert_eq!(us.e164, "+12025550143");
        assert!(matches!(us.kind, Type::FixedLine | Type::Mobile | Type::FixedLineOrMobile));
    }

    #[test]
    fn invalid_vectors() {
        assert_eq!(parse_phone("06 12 34 56", id("FR")).unwrap_err(), PhoneError::Invalid);
        assert_eq!(parse_phone("0690 12 34 56", id("FR")).unwrap_err(), PhoneError::Invalid);
        assert_eq!(parse_phone("555-0100", id("US")).unwrap_err(), PhoneError::Invalid);
        assert_eq!(parse_phone("abc", id("FR")).unwrap_err(), PhoneError::Unreadable);
        assert_eq!(parse_phone("", id("FR")).unwrap_err(), PhoneError::Unreadable);
        assert_eq!(parse_phone(&"1".repeat(65), id("FR")).unwrap_err(), PhoneError::Unreadable);
    }

    #[test]
    fn policy_refuses_surcharged_and_foreign() {
        let eu = CallPolicy::eu();
        let fr = id("FR");
        assert!(eu.check(&parse_phone("06 12 34 56 78", fr).unwrap()).is_ok());
        assert!(eu.check(&parse_phone("01 23 45 67 89", fr).unwrap()).is_ok());
        assert!(eu.check(&parse_phone("0470 12 34 56", id("BE")).unwrap()).is_ok());
        assert!(eu.check(&parse_phone("0151 23456789", id("DE")).unwrap()).is_ok());
        assert_eq!(eu.check(&parse_phone("0899 12 34 56", fr).unwrap()), Err(PhoneError::Surcharged));
        assert_eq!(eu.check(&parse_phone("0820 12 34 56", fr).unwrap()), Err(PhoneError::Surcharged));
        assert_eq!(eu.check(&parse_phone("+44 909 8790000", fr).unwrap()), Err(PhoneError::Surcharged));
        assert_eq!(
            eu.check(&parse_phone("+1 202 555 0143", fr).unwrap()),
            Err(PhoneError::CountryNotAllowed { region: "US".into() })
        );
        assert_eq!(
            eu.check(&parse_phone("07400 123456", id("GB")).unwrap()),
            Err(PhoneError::CountryNotAllowed { region: "GB".into() })
        );
    }

    #[test]
    fn masking_keeps_country_code_and_last_two_digits() {
        assert_eq!(mask("+33612345678"), "+33******78");
        assert_eq!(mask("+12025550143"), "+1******43");
        assert_eq!(mask("+4915123456789"), "+49******89");
        assert_eq!(mask("12"), "+***");
    }
}
