//! Evidence from a column's name: its words (split at `_`, `-`, spaces, digits and camelCase),
//! matched against the spellings people give each kind, abbreviations and other languages
//! included.

use crate::Kind;

/// How much a name says on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strength {
    /// The name suggests the kind; the values must confirm it (`name`, `code`).
    Weak,
    /// The name says it (`email`, `dob`, `plz`): enough on its own.
    Strong,
}

/// The words of a name, lower case: `customerEMail_2` → `customer`, `e`, `mail`, `2`.
pub fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev: Option<char> = None;
    for c in name.chars() {
        let boundary = match prev {
            None => false,
            Some(p) => {
                !c.is_alphanumeric()
                    || (p.is_lowercase() && c.is_uppercase())
                    || (p.is_alphabetic() != c.is_alphabetic() && p.is_alphanumeric())
            }
        };
        if boundary && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        }
        prev = Some(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Words that make a name about something other than a person's data: `phone_model`,
/// `email_verified`, `product_name`, `zip_file`, `ip_count`.
const NOT_PERSONAL: &[&str] = &[
    "model",
    "type",
    "brand",
    "count",
    "cnt",
    "status",
    "verified",
    "confirmed",
    "flag",
    "is",
    "has",
    "enabled",
    "format",
    "pattern",
    "template",
    "provider",
    "carrier",
    "length",
    "len",
    "valid",
    "product",
    "item",
    "sku",
    "company",
    "file",
    "filename",
    "table",
    "column",
    "schema",
    "host",
    "hostname",
    "server",
    "database",
    "app",
    "bank",
    "category",
    "department",
    "dept",
    "team",
    "project",
    "campaign",
    "event",
    "job",
    "task",
    "store",
    "shop",
    "warehouse",
    "vendor",
    "supplier",
    "plan",
    "tier",
    "group",
    "role",
    "queue",
    "bucket",
    "region",
    "zone",
    "country",
    "state",
    "currency",
    "language",
    "lang",
    "locale",
    "timezone",
    "tz",
    "color",
    "colour",
    "size",
    "version",
    "checksum",
    "md5",
    "sha1",
    "sha256",
    "etag",
    "mime",
    "sent",
    "opened",
    "bounced",
    "optin",
    "opt",
    "consent",
    "preference",
    "pref",
    "total",
    "attempts",
    "updated",
    "created",
    "modified",
    "expires",
    "expiry",
    "policy",
    "rule",
    "min",
    "max",
    "strength",
    "reset",
    "changed",
    "algorithm",
    "algo",
    "kind",
];

/// Words that make a secret-sounding name about the secret's rules or history, not the secret
/// (`password_policy`, `password_changed_at`, `login_attempts`).
const ABOUT_SECRETS: &[&str] = &[
    "policy",
    "strength",
    "length",
    "expires",
    "expiry",
    "changed",
    "reset",
    "count",
    "attempts",
    "algorithm",
    "algo",
];

/// Whole names (the words joined) and what they say.
const JOINED: &[(&str, Kind, Strength)] = &[
    ("firstname", Kind::FirstName, Strength::Strong),
    ("fname", Kind::FirstName, Strength::Strong),
    ("firstnm", Kind::FirstName, Strength::Strong),
    ("givenname", Kind::FirstName, Strength::Strong),
    ("forename", Kind::FirstName, Strength::Strong),
    ("vorname", Kind::FirstName, Strength::Strong),
    ("prenom", Kind::FirstName, Strength::Strong),
    ("nombre", Kind::FirstName, Strength::Strong),
    ("primernombre", Kind::FirstName, Strength::Strong),
    ("voornaam", Kind::FirstName, Strength::Strong),
    ("lastname", Kind::LastName, Strength::Strong),
    ("lname", Kind::LastName, Strength::Strong),
    ("lastnm", Kind::LastName, Strength::Strong),
    ("surname", Kind::LastName, Strength::Strong),
    ("familyname", Kind::LastName, Strength::Strong),
    ("nachname", Kind::LastName, Strength::Strong),
    ("apellido", Kind::LastName, Strength::Strong),
    ("apellidos", Kind::LastName, Strength::Strong),
    ("cognome", Kind::LastName, Strength::Strong),
    ("sobrenome", Kind::LastName, Strength::Strong),
    ("achternaam", Kind::LastName, Strength::Strong),
    ("nom", Kind::LastName, Strength::Strong),
    ("maidenname", Kind::LastName, Strength::Strong),
    ("fullname", Kind::FullName, Strength::Strong),
    ("nomcomplet", Kind::FullName, Strength::Strong),
    ("nombrecompleto", Kind::FullName, Strength::Strong),
    ("displayname", Kind::FullName, Strength::Strong),
    ("realname", Kind::FullName, Strength::Strong),
    ("cardholder", Kind::FullName, Strength::Strong),
    ("cardholdername", Kind::FullName, Strength::Strong),
    ("accountholder", Kind::FullName, Strength::Strong),
    ("name", Kind::FullName, Strength::Weak),
    ("nm", Kind::FullName, Strength::Weak),
    ("username", Kind::Username, Strength::Strong),
    ("usrname", Kind::Username, Strength::Strong),
    ("uname", Kind::Username, Strength::Strong),
    ("login", Kind::Username, Strength::Strong),
    ("loginname", Kind::Username, Strength::Strong),
    ("userlogin", Kind::Username, Strength::Strong),
    ("screenname", Kind::Username, Strength::Strong),
    ("nickname", Kind::Username, Strength::Strong),
    ("handle", Kind::Username, Strength::Strong),
    ("benutzername", Kind::Username, Strength::Strong),
    ("accountname", Kind::Username, Strength::Strong),
    ("socialsecurity", Kind::UsSsn, Strength::Strong),
    ("socialsecuritynumber", Kind::UsSsn, Strength::Strong),
    ("socsec", Kind::UsSsn, Strength::Strong),
    ("socialinsurance", Kind::CaSin, Strength::Strong),
    ("socialinsurancenumber", Kind::CaSin, Strength::Strong),
    ("creditcard", Kind::CreditCard, Strength::Strong),
    ("cardnumber", Kind::CreditCard, Strength::Strong),
    ("cardno", Kind::CreditCard, Strength::Strong),
    ("cardnum", Kind::CreditCard, Strength::Strong),
    ("ccnum", Kind::CreditCard, Strength::Strong),
    ("ccnumber", Kind::CreditCard, Strength::Strong),
    ("ccno", Kind::CreditCard, Strength::Strong),
    ("kreditkarte", Kind::CreditCard, Strength::Strong),
    ("dateofbirth", Kind::DateOfBirth, Strength::Strong),
    ("birthdate", Kind::DateOfBirth, Strength::Strong),
    ("birthday", Kind::DateOfBirth, Strength::Strong),
    ("dob", Kind::DateOfBirth, Strength::Strong),
    ("geburtsdatum", Kind::DateOfBirth, Strength::Strong),
    ("fechanacimiento", Kind::DateOfBirth, Strength::Strong),
    ("fechadenacimiento", Kind::DateOfBirth, Strength::Strong),
    ("datenaissance", Kind::DateOfBirth, Strength::Strong),
    ("datedenaissance", Kind::DateOfBirth, Strength::Strong),
    ("zipcode", Kind::PostalCode, Strength::Strong),
    ("postalcode", Kind::PostalCode, Strength::Strong),
    ("postcode", Kind::PostalCode, Strength::Strong),
    ("codigopostal", Kind::PostalCode, Strength::Strong),
    ("codepostal", Kind::PostalCode, Strength::Strong),
    ("postleitzahl", Kind::PostalCode, Strength::Strong),
    ("ipaddress", Kind::IpAddress, Strength::Strong),
    ("ipaddr", Kind::IpAddress, Strength::Strong),
    ("remoteaddr", Kind::IpAddress, Strength::Strong),
    ("remoteaddress", Kind::IpAddress, Strength::Strong),
    ("clientaddr", Kind::IpAddress, Strength::Strong),
    ("macaddress", Kind::MacAddress, Strength::Strong),
    ("macaddr", Kind::MacAddress, Strength::Strong),
    ("hwaddr", Kind::MacAddress, Strength::Strong),
    ("hwaddress", Kind::MacAddress, Strength::Strong),
    ("emailaddress", Kind::Email, Strength::Strong),
    ("emailaddr", Kind::Email, Strength::Strong),
    ("email", Kind::Email, Strength::Strong),
    ("apikey", Kind::Secret, Strength::Strong),
    ("accesskey", Kind::Secret, Strength::Strong),
    ("secretkey", Kind::Secret, Strength::Strong),
    ("privatekey", Kind::Secret, Strength::Strong),
    ("accesstoken", Kind::Secret, Strength::Strong),
    ("refreshtoken", Kind::Secret, Strength::Strong),
    ("passcode", Kind::Secret, Strength::Strong),
    ("phonenumber", Kind::Phone, Strength::Strong),
    ("phoneno", Kind::Phone, Strength::Strong),
    ("contactnumber", Kind::Phone, Strength::Strong),
    ("homepage", Kind::Url, Strength::Strong),
    ("website", Kind::Url, Strength::Strong),
    ("webpage", Kind::Url, Strength::Strong),
    ("streetaddress", Kind::StreetAddress, Strength::Strong),
    ("addressline", Kind::StreetAddress, Strength::Strong),
    ("nationalid", Kind::UsSsn, Strength::Weak),
    ("bankaccount", Kind::Iban, Strength::Weak),
    ("accountnumber", Kind::Iban, Strength::Weak),
];

/// Single words and what they say.
const WORDS: &[(&str, Kind, Strength)] = &[
    ("email", Kind::Email, Strength::Strong),
    ("mail", Kind::Email, Strength::Strong),
    ("emails", Kind::Email, Strength::Strong),
    ("correo", Kind::Email, Strength::Strong),
    ("courriel", Kind::Email, Strength::Strong),
    ("phone", Kind::Phone, Strength::Strong),
    ("phones", Kind::Phone, Strength::Strong),
    ("tel", Kind::Phone, Strength::Strong),
    ("telephone", Kind::Phone, Strength::Strong),
    ("telefon", Kind::Phone, Strength::Strong),
    ("telefono", Kind::Phone, Strength::Strong),
    ("telefone", Kind::Phone, Strength::Strong),
    ("mobile", Kind::Phone, Strength::Strong),
    ("mobil", Kind::Phone, Strength::Strong),
    ("cell", Kind::Phone, Strength::Strong),
    ("cellphone", Kind::Phone, Strength::Strong),
    ("fax", Kind::Phone, Strength::Strong),
    ("msisdn", Kind::Phone, Strength::Strong),
    ("handy", Kind::Phone, Strength::Strong),
    ("ssn", Kind::UsSsn, Strength::Strong),
    ("sin", Kind::CaSin, Strength::Strong),
    ("nas", Kind::CaSin, Strength::Strong),
    ("pan", Kind::CreditCard, Strength::Strong),
    ("cc", Kind::CreditCard, Strength::Weak),
    ("iban", Kind::Iban, Strength::Strong),
    ("address", Kind::StreetAddress, Strength::Strong),
    ("addr", Kind::StreetAddress, Strength::Strong),
    ("street", Kind::StreetAddress, Strength::Strong),
    ("strasse", Kind::StreetAddress, Strength::Strong),
    ("straße", Kind::StreetAddress, Strength::Strong),
    ("adresse", Kind::StreetAddress, Strength::Strong),
    ("direccion", Kind::StreetAddress, Strength::Strong),
    ("calle", Kind::StreetAddress, Strength::Strong),
    ("indirizzo", Kind::StreetAddress, Strength::Strong),
    ("endereco", Kind::StreetAddress, Strength::Strong),
    ("adres", Kind::StreetAddress, Strength::Strong),
    ("city", Kind::City, Strength::Strong),
    ("town", Kind::City, Strength::Strong),
    ("stadt", Kind::City, Strength::Strong),
    ("ort", Kind::City, Strength::Strong),
    ("ville", Kind::City, Strength::Strong),
    ("ciudad", Kind::City, Strength::Strong),
    ("citta", Kind::City, Strength::Strong),
    ("cidade", Kind::City, Strength::Strong),
    ("plaats", Kind::City, Strength::Strong),
    ("municipality", Kind::City, Strength::Strong),
    ("locality", Kind::City, Strength::Strong),
    ("zip", Kind::PostalCode, Strength::Strong),
    ("zipcode", Kind::PostalCode, Strength::Strong),
    ("postal", Kind::PostalCode, Strength::Strong),
    ("postcode", Kind::PostalCode, Strength::Strong),
    ("plz", Kind::PostalCode, Strength::Strong),
    ("cp", Kind::PostalCode, Strength::Weak),
    ("cap", Kind::PostalCode, Strength::Weak),
    ("dob", Kind::DateOfBirth, Strength::Strong),
    ("birth", Kind::DateOfBirth, Strength::Strong),
    ("birthday", Kind::DateOfBirth, Strength::Strong),
    ("birthdate", Kind::DateOfBirth, Strength::Strong),
    ("born", Kind::DateOfBirth, Strength::Strong),
    ("geburtstag", Kind::DateOfBirth, Strength::Strong),
    ("geburtsdatum", Kind::DateOfBirth, Strength::Strong),
    ("nacimiento", Kind::DateOfBirth, Strength::Strong),
    ("naissance", Kind::DateOfBirth, Strength::Strong),
    ("ip", Kind::IpAddress, Strength::Strong),
    ("ipv4", Kind::IpAddress, Strength::Strong),
    ("ipv6", Kind::IpAddress, Strength::Strong),
    ("mac", Kind::MacAddress, Strength::Strong),
    ("bssid", Kind::MacAddress, Strength::Strong),
    ("url", Kind::Url, Strength::Strong),
    ("uri", Kind::Url, Strength::Strong),
    ("href", Kind::Url, Strength::Strong),
    ("link", Kind::Url, Strength::Weak),
    ("site", Kind::Url, Strength::Weak),
    ("username", Kind::Username, Strength::Strong),
    ("login", Kind::Username, Strength::Strong),
    ("nick", Kind::Username, Strength::Strong),
    ("handle", Kind::Username, Strength::Strong),
    ("password", Kind::Secret, Strength::Strong),
    ("passwd", Kind::Secret, Strength::Strong),
    ("pwd", Kind::Secret, Strength::Strong),
    ("pass", Kind::Secret, Strength::Strong),
    ("passwort", Kind::Secret, Strength::Strong),
    ("contrasena", Kind::Secret, Strength::Strong),
    ("secret", Kind::Secret, Strength::Strong),
    ("token", Kind::Secret, Strength::Strong),
    ("salt", Kind::Secret, Strength::Strong),
    ("otp", Kind::Secret, Strength::Strong),
    ("pin", Kind::Secret, Strength::Strong),
    ("credential", Kind::Secret, Strength::Strong),
    ("credentials", Kind::Secret, Strength::Strong),
    ("apikey", Kind::Secret, Strength::Strong),
];

/// Words naming text written by people, where anything may hide.
const FREE_TEXT: &[&str] = &[
    "note",
    "notes",
    "comment",
    "comments",
    "description",
    "desc",
    "bio",
    "about",
    "message",
    "msg",
    "body",
    "remark",
    "remarks",
    "memo",
    "text",
    "feedback",
    "content",
    "summary",
    "details",
    "detail",
    "review",
    "reason",
    "narrative",
    "observation",
    "observations",
    "log",
    "chat",
];

/// Words naming a person: `customer_name`, `patient_nm`.
const PERSON: &[&str] = &[
    "customer",
    "contact",
    "person",
    "patient",
    "employee",
    "member",
    "holder",
    "owner",
    "recipient",
    "sender",
    "client",
    "full",
    "display",
    "legal",
    "spouse",
    "guardian",
    "parent",
    "billing",
    "shipping",
    "beneficiary",
    "driver",
    "cardholder",
    "applicant",
    "student",
    "teacher",
    "doctor",
    "physician",
    "nurse",
    "agent",
    "buyer",
    "seller",
    "tenant",
    "insured",
    "subscriber",
    "emergency",
    "kunde",
    "cliente",
    "signer",
    "witness",
    "manager",
    "rep",
    "representative",
];

/// What a column's name says, if anything: the kind and how strongly.
pub fn kind_of(name: &str) -> Option<(Kind, Strength)> {
    let words = words(name);
    if words.is_empty() {
        return None;
    }
    let joined: String = words.concat();
    // `email_verified`, `phone_model`, `product_name`: about something else.
    let not_personal = words.iter().any(|w| NOT_PERSONAL.contains(&w.as_str()));
    // A whole-name spelling first, then two words that say it, then single words, then long
    // spellings inside a longer name, then `name` beside a word for a person.
    let found = JOINED
        .iter()
        .find(|(j, _, _)| *j == joined)
        .map(|(_, k, s)| (*k, *s))
        .or_else(|| pairs(&words))
        .or_else(|| {
            // The most specific word wins: scan for kinds in a fixed order of precedence.
            let mut best: Option<(Kind, Strength)> = None;
            for w in &words {
                if let Some((_, k, s)) = WORDS.iter().find(|(x, _, _)| x == w) {
                    let better = match best {
                        None => true,
                        Some((bk, bs)) => (*s, precedence(*k)) > (bs, precedence(bk)),
                    };
                    if better {
                        best = Some((*k, *s));
                    }
                }
            }
            best
        })
        .or_else(|| {
            // Long spellings inside a longer name: `customeremail`, `billingaddress`.
            JOINED
                .iter()
                .filter(|(j, _, s)| j.len() >= 5 && *s == Strength::Strong)
                .find(|(j, _, _)| joined.contains(j))
                .map(|(_, k, s)| (*k, *s))
        })
        .or_else(|| {
            // `name` beside a word naming a person: `customer_name`, `patient_nm`.
            let has_name = words.iter().any(|w| w == "name" || w == "nm");
            let person = words.iter().any(|w| PERSON.contains(&w.as_str()));
            if has_name && person {
                Some((Kind::FullName, Strength::Strong))
            } else if has_name {
                Some((Kind::FullName, Strength::Weak))
            } else {
                None
            }
        });
    match found {
        // Weak evidence dies beside a word about something else; strong evidence too unless
        // the words name a secret (`password_reset_token` is still a token).
        Some((k, _)) if not_personal && k != Kind::Secret => None,
        Some((Kind::Secret, _))
            if not_personal
                && words.iter().any(|w| ABOUT_SECRETS.contains(&w.as_str()))
                && !words.iter().any(|w| w == "token") =>
        {
            None
        }
        other => other,
    }
}

/// Two neighbouring words that say it: `first name`, `given name`, `last name`, `user name`,
/// `e mail`, `zip code`, `birth date`, `mac address`, `ip address`.
fn pairs(words: &[String]) -> Option<(Kind, Strength)> {
    for w in words.windows(2) {
        let (a, b) = (w[0].as_str(), w[1].as_str());
        let found = match (a, b) {
            ("first" | "given" | "fore" | "christian", "name" | "nm") => Some(Kind::FirstName),
            ("last" | "family" | "sur" | "maiden", "name" | "nm") => Some(Kind::LastName),
            ("full" | "display" | "legal" | "real", "name" | "nm") => Some(Kind::FullName),
            ("user" | "login" | "screen" | "account", "name" | "nm" | "id")
                if b != "id" || a == "login" =>
            {
                Some(Kind::Username)
            }
            ("e", "mail") => Some(Kind::Email),
            ("zip" | "post" | "postal", "code" | "cd") => Some(Kind::PostalCode),
            ("birth", "date" | "day" | "dt") | ("date", "birth") => Some(Kind::DateOfBirth),
            ("mac", _) => Some(Kind::MacAddress),
            ("ip", _) => Some(Kind::IpAddress),
            ("social", "security") => Some(Kind::UsSsn),
            ("social", "insurance") => Some(Kind::CaSin),
            ("credit" | "debit", "card") => Some(Kind::CreditCard),
            ("card", "number" | "no" | "num" | "nr") => Some(Kind::CreditCard),
            (
                "street" | "mailing" | "home" | "billing" | "shipping" | "postal",
                "address" | "addr",
            ) => Some(Kind::StreetAddress),
            ("address" | "addr", "line" | "1" | "2" | "street") => Some(Kind::StreetAddress),
            _ => None,
        };
        if let Some(k) = found {
            return Some((k, Strength::Strong));
        }
    }
    None
}

/// Which kind wins when a name holds words of two (`email_address`: email, not an address).
fn precedence(kind: Kind) -> u8 {
    match kind {
        Kind::Secret => 9,
        Kind::Email => 8,
        Kind::IpAddress | Kind::MacAddress => 7,
        Kind::Url => 6,
        Kind::Phone => 5,
        Kind::UsSsn | Kind::CaSin | Kind::CreditCard | Kind::Iban => 5,
        Kind::DateOfBirth => 4,
        Kind::PostalCode => 3,
        Kind::City => 3,
        Kind::Username => 2,
        Kind::StreetAddress => 1,
        _ => 0,
    }
}

/// Whether the name says people write free text in it.
pub fn is_free_text(name: &str) -> bool {
    words(name).iter().any(|w| FREE_TEXT.contains(&w.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_names_into_words() {
        assert_eq!(words("customerEMail_2"), ["customer", "email", "2"]);
        assert_eq!(words("e_mail"), ["e", "mail"]);
        assert_eq!(words("DOB"), ["dob"]);
        assert_eq!(words("ip_addr"), ["ip", "addr"]);
    }

    #[test]
    fn reads_what_names_say() {
        let k = |n: &str| kind_of(n).map(|(k, _)| k);
        assert_eq!(k("fname"), Some(Kind::FirstName));
        assert_eq!(k("e_mail"), Some(Kind::Email));
        assert_eq!(k("customerEmail"), Some(Kind::Email));
        assert_eq!(k("email_address"), Some(Kind::Email));
        assert_eq!(k("dob"), Some(Kind::DateOfBirth));
        assert_eq!(k("tel"), Some(Kind::Phone));
        assert_eq!(k("plz"), Some(Kind::PostalCode));
        assert_eq!(k("zip_code"), Some(Kind::PostalCode));
        assert_eq!(k("billing_address"), Some(Kind::StreetAddress));
        assert_eq!(k("remote_ip"), Some(Kind::IpAddress));
        assert_eq!(k("password_hash"), Some(Kind::Secret));
        assert_eq!(k("customer_name"), Some(Kind::FullName));
        assert_eq!(kind_of("name"), Some((Kind::FullName, Strength::Weak)));
        for decoy in [
            "product_name",
            "email_verified",
            "phone_model",
            "hotel",
            "zip_file_size",
            "id",
            "order_no",
            "company_name",
            "password_policy",
        ] {
            assert_eq!(k(decoy), None, "{decoy}");
        }
    }
}
