//! The closed list of reject reasons and warnings of `sources.md`. Codes are stable:
//! they are stored in `quarantine.reasons` and `ingest_warning.warnings`, and reports
//! filter on them, so a code is never renamed.

use std::fmt;

/// Why a row cannot be loaded. A row carries every reason that applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// A required value is absent (blank or a null token).
    MissingRequired,
    /// A USCC fails the GB 32100 alphabet, length or check character.
    InvalidUscc,
    /// Text that is not a date, month or year in an accepted style.
    InvalidDate,
    /// A date, month or year after the run date.
    FutureDate,
    /// Two dates in the wrong order (deregistration before establishment, ...).
    DateOrder,
    /// Text that is not a number, or a fraction where an integer is required.
    InvalidNumber,
    /// A quantity below its minimum (negative money, negative counts, zero financing).
    NegativeAmount,
    /// A number followed by a unit that is not 元/万元/亿元.
    InvalidUnit,
    /// A financing currency other than CNY.
    UnsupportedCurrency,
    /// An industry code that is not a GB/T 4754-2017 class.
    UnknownIndustryCode,
    /// A division code that is not one of Datong's counties, or no county at all.
    UnknownDivision,
    /// A division code outside Datong (not 1402…).
    OutsideCity,
    /// A value that no alias table maps.
    UnknownEnumValue,
    /// A patent application number with a bad form or check character.
    InvalidPatentNo,
    /// A stated patent type that contradicts the type digit of the number.
    PatentTypeMismatch,
    /// A patent's application date whose year is not the number's year.
    YearMismatch,
    /// Another row of the run has the same key and different values.
    ConflictingDuplicate,
    /// A USCC or name that no registry entry has.
    OrphanReference,
    /// A name that matches several registry entries.
    AmbiguousReference,
}

impl Reason {
    /// Every reason, in the order of `sources.md`.
    pub const ALL: [Reason; 19] = [
        Reason::MissingRequired,
        Reason::InvalidUscc,
        Reason::InvalidDate,
        Reason::FutureDate,
        Reason::DateOrder,
        Reason::InvalidNumber,
        Reason::NegativeAmount,
        Reason::InvalidUnit,
        Reason::UnsupportedCurrency,
        Reason::UnknownIndustryCode,
        Reason::UnknownDivision,
        Reason::OutsideCity,
        Reason::UnknownEnumValue,
        Reason::InvalidPatentNo,
        Reason::PatentTypeMismatch,
        Reason::YearMismatch,
        Reason::ConflictingDuplicate,
        Reason::OrphanReference,
        Reason::AmbiguousReference,
    ];

    /// The stable code stored in `quarantine.reasons`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::MissingRequired => "missing_required",
            Reason::InvalidUscc => "invalid_uscc",
            Reason::InvalidDate => "invalid_date",
            Reason::FutureDate => "future_date",
            Reason::DateOrder => "date_order",
            Reason::InvalidNumber => "invalid_number",
            Reason::NegativeAmount => "negative_amount",
            Reason::InvalidUnit => "invalid_unit",
            Reason::UnsupportedCurrency => "unsupported_currency",
            Reason::UnknownIndustryCode => "unknown_industry_code",
            Reason::UnknownDivision => "unknown_division",
            Reason::OutsideCity => "outside_city",
            Reason::UnknownEnumValue => "unknown_enum_value",
            Reason::InvalidPatentNo => "invalid_patent_no",
            Reason::PatentTypeMismatch => "patent_type_mismatch",
            Reason::YearMismatch => "year_mismatch",
            Reason::ConflictingDuplicate => "conflicting_duplicate",
            Reason::OrphanReference => "orphan_reference",
            Reason::AmbiguousReference => "ambiguous_reference",
        }
    }

    /// The reason with this code, if any.
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Something worth knowing about a row that loads anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Warning {
    /// The legacy 南郊区 (140211) was split in 2018; it maps to 云冈区 140214.
    LegacyDivisionSplit,
    /// The county was found from the address text because the code was missing.
    DivisionFromAddress,
    /// A patent applicant that links to no single registry entry.
    UnlinkedApplicant,
}

impl Warning {
    /// Every warning.
    pub const ALL: [Warning; 3] = [
        Warning::LegacyDivisionSplit,
        Warning::DivisionFromAddress,
        Warning::UnlinkedApplicant,
    ];

    /// The stable code stored in `ingest_warning.warnings`.
    pub fn code(self) -> &'static str {
        match self {
            Warning::LegacyDivisionSplit => "legacy_division_split",
            Warning::DivisionFromAddress => "division_from_address",
            Warning::UnlinkedApplicant => "unlinked_applicant",
        }
    }

    /// The warning with this code, if any.
    pub fn from_code(code: &str) -> Option<Warning> {
        Warning::ALL.into_iter().find(|w| w.code() == code)
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A value that a rule refused: the stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The stable reason code.
    pub reason: Reason,
    /// What was wrong, quoting the value.
    pub message: String,
}

impl Rejection {
    /// A rejection with the given reason and message.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Rejection {
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(r));
        }
        for w in Warning::ALL {
            assert_eq!(Warning::from_code(w.code()), Some(w));
        }
        assert_eq!(Reason::from_code("nope"), None);
    }
}
