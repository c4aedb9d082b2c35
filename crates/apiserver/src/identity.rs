//! Who a client is: the subject of its verified client certificate.
//!
//! Like kube-apiserver's x509 authenticator, the common name is the user and
//! each organization is a group. rustls has already checked the chain
//! against our CA; this module only reads the subject out of the DER, with a
//! deliberately tiny parser that returns `None` on anything unexpected.

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

impl Identity {
    /// Whether this user may do everything (the `system:masters` group).
    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }

    /// The identity in a DER-encoded certificate.
    pub fn from_certificate(der: &[u8]) -> Option<Identity> {
        let (cert, _) = read_tlv(der)?;
        let (tbs, _) = read_tlv(cert.content)?;
        let mut rest = tbs.content;
        let mut fields = Vec::new();
        while !rest.is_empty() {
            let (tlv, next) = read_tlv(rest)?;
            fields.push(tlv);
            rest = next;
        }
        // TBSCertificate: [0] version (optional), serial, signature alg,
        // issuer, validity, subject, ...
        let skip = usize::from(fields.first()?.tag == 0xa0);
        let subject = fields.get(skip + 4)?;
        let mut identity = Identity { user: String::new(), groups: Vec::new() };
        let mut rdns = subject.content;
        while !rdns.is_empty() {
            let (set, next) = read_tlv(rdns)?;
            rdns = next;
            let mut attrs = set.content;
            while !attrs.is_empty() {
                let (attr, next) = read_tlv(attrs)?;
                attrs = next;
                let (oid, value) = read_tlv(attr.content)?;
                let (value, _) = read_tlv(value)?;
                let text = String::from_utf8(value.content.to_vec()).ok()?;
                match oid.content {
                    OID_COMMON_NAME => identity.user = text,
                    OID_ORGANIZATION => identity.groups.push(text),
                    _ => {}
                }
            }
        }
        Some(identity)
    }
}

/// 2.5.4.3 and 2.5.4.10, DER-encoded.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];

struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
}

/// Reads one DER tag-length-value, returning it and the bytes after it.
fn read_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((Tlv { tag, content: &rest[..len] }, &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_certificate_names_the_admin_in_system_masters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = crate::pki::Pki::load_or_create(dir.path(), &[]).expect("pki");
        let (cert, _) = pki.issue_client("jane", Some("dev")).expect("issue");
        let der = pem_to_der(&cert);
        let id = Identity::from_certificate(&der).expect("parse");
        assert_eq!(id.user, "jane");
        assert_eq!(id.groups, vec!["dev"]);
        assert!(!id.is_admin());
        let admin = Identity::from_certificate(&pem_to_der(&pki.admin_cert)).expect("parse");
        assert_eq!(admin.user, "kubernetes-admin");
        assert!(admin.is_admin());
    }

    #[test]
    fn garbage_is_not_an_identity() {
        assert_eq!(Identity::from_certificate(&[0x30, 0x82, 0xff]), None);
        assert_eq!(Identity::from_certificate(&[]), None);
    }

    fn pem_to_der(pem: &str) -> Vec<u8> {
        use base64::Engine as _;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD.decode(body).expect("base64")
    }
}
