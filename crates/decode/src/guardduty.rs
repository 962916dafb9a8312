//! AWS GuardDuty findings, as GuardDuty writes them and as they reach a SOC: the finding
//! object itself (`GetFindings`, S3 export), a `{"findings": [...]}` wrapper (which may be
//! empty: no output), an EventBridge event (`detail-type: GuardDuty Finding`, the finding in
//! `detail`), and AWS Security Hub's form (ASFF), bare or in a `Security Hub Findings - …`
//! EventBridge event with `detail.findings[]`. Every finding becomes an alert.
//!
//! Time: `updatedAt` (the finding's latest occurrence; GuardDuty updates a finding in place
//! when the activity repeats), else `createdAt`; ISO 8601 in UTC. ASFF: `UpdatedAt`, else
//! `CreatedAt`.
//! Severity: GuardDuty's `severity` is a number 1.0–10.0 in bands Low 1.0–3.9, Medium
//! 4.0–6.9, High 7.0–8.9, Critical 9.0–10.0. Mapped explicitly, keeping the band:
//! Low → max(20, s×10) (20–39), Medium → s×10 (40–69), High → s×10 (70–89),
//! Critical → s×10 (90–100); below 1.0 → 10 (info). The number as written is kept.
//! ASFF: `Severity.Label` (INFORMATIONAL 10, LOW 30, MEDIUM 50, HIGH 75, CRITICAL 95), else
//! `Severity.Normalized` (already 0–100).
//! Ids: the finding `id` (ASFF: `Id`, the finding ARN for GuardDuty) is the source id.
//! ATT&CK: GuardDuty gives no technique ids. The finding type (`Recon:EC2/PortProbe…`) is the
//! rule; its threat-purpose prefix names the tactic (table in [`tactic_of_type`]). ASFF
//! `Types` of the form `TTPs/<tactic>/…` name the tactic directly.
//! Entities: the instance id (host), its addresses, the IAM user of the access key, the
//! Kubernetes or RDS user, the remote address of the action (source when it came in, target
//! when the resource was the actor or the connection went out), DNS domains, and the affected
//! AWS resources and the account (`cloud_resource`).

use riposte_domain::{Alert, Decoded, EntityKind, Role, Rule, Severity, SeverityLabel};
use serde_json::Value;

use crate::fields::{self, Entities, get, str_at, text_at};
use crate::{DecodeError, Decoder};

pub struct GuardDuty;

const PRODUCT: &str = "AWS GuardDuty";
const SECURITY_HUB: &str = "AWS Security Hub";

impl Decoder for GuardDuty {
    fn name(&self) -> &'static str {
        "guardduty"
    }

    fn recognises(&self, r: &Value) -> bool {
        if let Some(detail_type) = str_at(r, "detail-type") {
            return get(r, "detail").is_some_and(Value::is_object)
                && (detail_type == "GuardDuty Finding"
                    || (detail_type.starts_with("Security Hub Findings")
                        && !detail_type.ends_with("V2")));
        }
        if let Some(obj) = r.as_object()
            && obj.len() == 1
            && let Some(Value::Array(items)) = obj.get("findings")
        {
            return items.first().is_none_or(|f| is_finding(f) || is_asff(f));
        }
        is_finding(r) || is_asff(r)
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        if let Some(detail_type) = get(&record, "detail-type") {
            return self.decode_eventbridge(&record, detail_type);
        }
        if let Some(obj) = record.as_object()
            && obj.len() == 1
            && let Some(items) = obj.get("findings")
        {
            let Value::Array(items) = items else {
                return Err(DecodeError::new(
                    "findings",
                    format!("expected an array, found {}", fields::type_name(items)),
                ));
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, f) in items.iter().enumerate() {
                let prefix = format!("findings[{i}]");
                out.push(decode_any(f, &prefix)?);
            }
            return Ok(out);
        }
        Ok(vec![decode_any(&record, "")?])
    }
}

impl GuardDuty {
    fn decode_eventbridge(
        &self,
        record: &Value,
        detail_type: &Value,
    ) -> Result<Vec<Decoded>, DecodeError> {
        let Some(detail_type) = detail_type.as_str() else {
            return Err(DecodeError::new("detail-type", "expected a string"));
        };
        let detail = get(record, "detail").ok_or_else(|| DecodeError::missing("detail"))?;
        if !detail.is_object() {
            return Err(DecodeError::new(
                "detail",
                format!("expected an object, found {}", fields::type_name(detail)),
            ));
        }
        if detail_type == "GuardDuty Finding" {
            return Ok(vec![finding(detail, "detail")?]);
        }
        // V2 events carry OCSF, not ASFF: that is the ocsf decoder's.
        if detail_type.starts_with("Security Hub Findings") && !detail_type.ends_with("V2") {
            let items = match get(detail, "findings") {
                Some(Value::Array(items)) => items,
                None | Some(Value::Null) => return Err(DecodeError::missing("detail.findings")),
                Some(other) => {
                    return Err(DecodeError::new(
                        "detail.findings",
                        format!("expected an array, found {}", fields::type_name(other)),
                    ));
                }
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, f) in items.iter().enumerate() {
                out.push(asff(f, &format!("detail.findings[{i}]"))?);
            }
            return Ok(out);
        }
        Err(DecodeError::new(
            "detail-type",
            format!("not a GuardDuty or Security Hub finding event: {detail_type:?}"),
        ))
    }
}

/// A GuardDuty finding object (camelCase keys).
fn is_finding(r: &Value) -> bool {
    str_at(r, "accountId").is_some()
        && str_at(r, "type").is_some()
        && get(r, "severity").is_some()
        && (str_at(r, "service.serviceName") == Some("guardduty")
            || str_at(r, "arn").is_some_and(|a| a.contains(":guardduty:")))
}

/// An AWS Security Finding Format finding (PascalCase keys).
fn is_asff(r: &Value) -> bool {
    str_at(r, "SchemaVersion").is_some()
        && str_at(r, "ProductArn").is_some()
        && str_at(r, "AwsAccountId").is_some()
        && get(r, "Types").is_some()
}

fn decode_any(f: &Value, prefix: &str) -> Result<Decoded, DecodeError> {
    if f.get("ProductArn").is_some() || f.get("SchemaVersion").is_some() {
        asff(f, prefix)
    } else {
        finding(f, prefix)
    }
}

/// `prefix.field`, or `field` at the top level.
fn at(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Re-roots an error from a nested object onto the record's path.
fn rooted(prefix: &str) -> impl Fn(DecodeError) -> DecodeError + '_ {
    move |e| {
        if prefix.is_empty() {
            e
        } else if e.field == "$" {
            DecodeError::new(prefix, e.reason)
        } else {
            DecodeError::new(at(prefix, &e.field), e.reason)
        }
    }
}

fn finding(f: &Value, prefix: &str) -> Result<Decoded, DecodeError> {
    if !f.is_object() {
        return Err(DecodeError::new(
            if prefix.is_empty() { "$" } else { prefix },
            format!("expected a finding object, found {}", fields::type_name(f)),
        ));
    }
    let rooted = rooted(prefix);
    let finding_type = fields::req_str(f, "type").map_err(&rooted)?.to_string();
    let (time, time_original) =
        fields::first_time(f, &["updatedAt", "createdAt"]).map_err(&rooted)?;
    let severity = severity_of(f).map_err(&rooted)?;
    let title = str_at(f, "title").unwrap_or(&finding_type).to_string();
    let tactics = tactic_of_type(&finding_type)
        .map(|t| vec![t.to_string()])
        .unwrap_or_default();
    Ok(Decoded::Alert(Alert {
        id: String::new(),
        decoder: "guardduty".into(),
        product: PRODUCT.into(),
        source_id: text_at(f, "id"),
        time,
        time_original,
        title,
        description: str_at(f, "description").map(str::to_string),
        severity,
        rule: Rule::new(Some(finding_type.clone()), Some(finding_type)),
        entities: finding_entities(f).into_vec(),
        techniques: Vec::new(),
        tactics,
        original: f.clone(),
        origin: None,
    }))
}

/// GuardDuty's 1.0–10.0 scale, band by band (see the module doc).
fn severity_of(f: &Value) -> Result<Severity, DecodeError> {
    let n = match get(f, "severity") {
        None | Some(Value::Null) => return Err(DecodeError::missing("severity")),
        Some(Value::Number(n)) => n,
        Some(other) => {
            return Err(DecodeError::new(
                "severity",
                format!("expected a number, found {}", fields::type_name(other)),
            ));
        }
    };
    let s = n.as_f64().unwrap_or(f64::NAN);
    if !(0.0..=10.0).contains(&s) {
        return Err(DecodeError::new(
            "severity",
            format!("{n} is outside GuardDuty's 1.0–10.0 scale"),
        ));
    }
    let tenfold = (s * 10.0).round() as u32;
    let score = match s {
        s if s < 1.0 => 10,
        s if s < 4.0 => tenfold.max(20),
        _ => tenfold,
    };
    Ok(Severity::from_score(score, n.to_string()))
}

/// The ATT&CK tactic a GuardDuty threat purpose (the type's prefix before `:`) stands for.
/// GuardDuty's own definitions of each purpose; `Behavior`, `Policy` and `Pentest` name no
/// adversary objective and map to none.
pub fn tactic_of_type(finding_type: &str) -> Option<&'static str> {
    let purpose = finding_type.split(':').next()?;
    Some(match purpose {
        "Backdoor" | "Trojan" => "Command and Control",
        "CredentialAccess" => "Credential Access",
        "Cryptocurrency" | "Impact" => "Impact",
        "DefenseEvasion" | "Stealth" => "Defense Evasion",
        "Discovery" => "Discovery",
        "Execution" => "Execution",
        "Exfiltration" => "Exfiltration",
        "InitialAccess" | "UnauthorizedAccess" => "Initial Access",
        "Persistence" => "Persistence",
        "PrivilegeEscalation" => "Privilege Escalation",
        "Recon" => "Reconnaissance",
        _ => return None,
    })
}

fn finding_entities(f: &Value) -> Entities {
    let mut e = Entities::new();
    // resourceRole ACTOR: the resource did it (an instance attacking out); else it was hit.
    let actor = str_at(f, "service.resourceRole").is_some_and(|r| r.eq_ignore_ascii_case("actor"));
    let (resource_role, resource_ip_role, remote_role) = if actor {
        (Role::Actor, Role::Source, Role::Target)
    } else {
        (Role::Target, Role::Target, Role::Source)
    };

    if let Some(inst) = get(f, "resource.instanceDetails") {
        e.add_at(EntityKind::Host, resource_role, inst, "instanceId");
        if let Some(Value::Array(nics)) = get(inst, "networkInterfaces") {
            for nic in nics {
                e.add_at(EntityKind::Ip, resource_ip_role, nic, "privateIpAddress")
                    .add_at(EntityKind::Ip, resource_ip_role, nic, "publicIp");
                if let Some(Value::Array(v6)) = get(nic, "ipv6Addresses") {
                    for a in v6 {
                        e.add(EntityKind::Ip, resource_ip_role, a.as_str());
                    }
                }
            }
        }
    }
    e.add_at(
        EntityKind::User,
        Role::Actor,
        f,
        "resource.accessKeyDetails.userName",
    )
    .add_at(
        EntityKind::CloudResource,
        Role::Target,
        f,
        "resource.accessKeyDetails.accessKeyId",
    )
    .add_at(
        EntityKind::User,
        Role::Actor,
        f,
        "resource.kubernetesDetails.kubernetesUserDetails.username",
    )
    .add_at(
        EntityKind::User,
        Role::Actor,
        f,
        "resource.rdsDbUserDetails.user",
    )
    .add_at(
        EntityKind::CloudResource,
        Role::Target,
        f,
        "resource.eksClusterDetails.arn",
    )
    .add_at(
        EntityKind::CloudResource,
        Role::Target,
        f,
        "resource.rdsDbInstanceDetails.dbInstanceArn",
    );
    if let Some(Value::Array(buckets)) = get(f, "resource.s3BucketDetails") {
        for b in buckets {
            e.add_at(EntityKind::CloudResource, Role::Target, b, "arn");
        }
    }

    if let Some(action) = get(f, "service.action") {
        if let Some(net) = get(action, "networkConnectionAction") {
            let inbound = str_at(net, "connectionDirection") == Some("INBOUND");
            let (remote, local) = if inbound {
                (Role::Source, Role::Target)
            } else {
                (Role::Target, Role::Source)
            };
            remote_ip(&mut e, remote, net, "remoteIpDetails");
            remote_ip(&mut e, local, net, "localIpDetails");
        }
        if let Some(api) = get(action, "awsApiCallAction") {
            remote_ip(&mut e, Role::Source, api, "remoteIpDetails");
            e.add_at(
                EntityKind::Domain,
                Role::Source,
                api,
                "domainDetails.domain",
            );
            if let Some(Value::Object(affected)) = get(api, "affectedResources") {
                for v in affected.values() {
                    e.add(EntityKind::CloudResource, Role::Target, v.as_str());
                }
            }
        }
        if let Some(Value::Array(probes)) = get(action, "portProbeAction.portProbeDetails") {
            for p in probes {
                remote_ip(&mut e, Role::Source, p, "remoteIpDetails");
                remote_ip(&mut e, Role::Target, p, "localIpDetails");
            }
        }
        for kind in ["kubernetesApiCallAction", "rdsLoginAttemptAction"] {
            if let Some(a) = get(action, kind) {
                remote_ip(&mut e, remote_role, a, "remoteIpDetails");
                e.add_all_at(EntityKind::Ip, remote_role, a, "sourceIPs");
            }
        }
        e.add_at(
            EntityKind::Domain,
            Role::Target,
            action,
            "dnsRequestAction.domain",
        );
    }
    e.add_at(EntityKind::CloudResource, Role::Related, f, "accountId");
    e
}

fn remote_ip(e: &mut Entities, role: Role, action: &Value, details: &str) {
    e.add_at(
        EntityKind::Ip,
        role,
        action,
        &format!("{details}.ipAddressV4"),
    )
    .add_at(
        EntityKind::Ip,
        role,
        action,
        &format!("{details}.ipAddressV6"),
    );
}

/// One ASFF finding: GuardDuty's through Security Hub, or any other product's (Security Hub
/// controls, Inspector, Macie), read by the same format rules.
fn asff(f: &Value, prefix: &str) -> Result<Decoded, DecodeError> {
    if !f.is_object() {
        return Err(DecodeError::new(
            if prefix.is_empty() { "$" } else { prefix },
            format!("expected a finding object, found {}", fields::type_name(f)),
        ));
    }
    let rooted = rooted(prefix);
    let product_arn = fields::req_str(f, "ProductArn").map_err(&rooted)?;
    let from_guardduty = product_arn.ends_with("/guardduty");
    let (time, time_original) =
        fields::first_time(f, &["UpdatedAt", "CreatedAt"]).map_err(&rooted)?;
    let title = fields::req_str(f, "Title").map_err(&rooted)?.to_string();
    let severity = asff_severity(f).map_err(&rooted)?;

    let types: Vec<&str> = match get(f, "Types") {
        Some(Value::Array(t)) => t.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mut tactics: Vec<String> = Vec::new();
    let mut guardduty_type: Option<String> = None;
    for t in &types {
        let mut parts = t.splitn(3, '/');
        if parts.next() == Some("TTPs")
            && let Some(tactic) = parts.next()
            && !tactics.iter().any(|x| x == tactic)
        {
            tactics.push(tactic.to_string());
        }
        if from_guardduty && guardduty_type.is_none() {
            guardduty_type = t.rsplit('/').next().and_then(unmangle_guardduty_type);
        }
    }
    if tactics.is_empty()
        && let Some(t) = guardduty_type.as_deref().and_then(tactic_of_type)
    {
        tactics.push(t.to_string());
    }
    let rule = match guardduty_type {
        Some(t) => Rule::new(Some(t.clone()), Some(t)),
        None => Rule::new(
            text_at(f, "GeneratorId"),
            str_at(f, "ProductFields.ControlId")
                .map(str::to_string)
                .or_else(|| Some(title.clone())),
        ),
    };
    let product = if from_guardduty {
        PRODUCT.to_string()
    } else {
        match str_at(f, "ProductName") {
            Some("Security Hub") | None => SECURITY_HUB.to_string(),
            Some(other) => format!("AWS Security Hub: {other}"),
        }
    };
    Ok(Decoded::Alert(Alert {
        id: String::new(),
        decoder: "guardduty".into(),
        product,
        source_id: text_at(f, "Id"),
        time,
        time_original,
        title,
        description: str_at(f, "Description").map(str::to_string),
        severity,
        rule,
        entities: asff_entities(f).into_vec(),
        techniques: riposte_domain::TechniqueId::find_all(&types.join(" ")),
        tactics,
        original: f.clone(),
        origin: None,
    }))
}

/// ASFF cannot hold `/` in a type's last part, so Security Hub writes GuardDuty's
/// `Stealth:IAMUser/CloudTrailLoggingDisabled` as `Stealth:IAMUser-CloudTrailLoggingDisabled`.
fn unmangle_guardduty_type(t: &str) -> Option<String> {
    let (purpose, rest) = t.split_once(':')?;
    let (resource, name) = rest.split_once('-')?;
    Some(format!("{purpose}:{resource}/{name}"))
}

fn asff_severity(f: &Value) -> Result<Severity, DecodeError> {
    if let Some(v) = get(f, "Severity.Label") {
        let text = v
            .as_str()
            .ok_or_else(|| DecodeError::new("Severity.Label", "expected a string"))?;
        let label = SeverityLabel::parse(text).ok_or_else(|| {
            DecodeError::new(
                "Severity.Label",
                format!("unknown label {text:?} (INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL)"),
            )
        })?;
        return Ok(Severity::from_label(label, text));
    }
    match get(f, "Severity.Normalized") {
        None | Some(Value::Null) => Ok(Severity::unknown()),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(s) if s <= 100 => Ok(Severity::from_score(s as u32, n.to_string())),
            _ => Err(DecodeError::new(
                "Severity.Normalized",
                format!("{n} is not a whole number 0–100"),
            )),
        },
        Some(other) => Err(DecodeError::new(
            "Severity.Normalized",
            format!("expected a number, found {}", fields::type_name(other)),
        )),
    }
}

fn asff_entities(f: &Value) -> Entities {
    let mut e = Entities::new();
    e.add_at(EntityKind::Ip, Role::Source, f, "Network.SourceIpV4")
        .add_at(EntityKind::Ip, Role::Source, f, "Network.SourceIpV6")
        .add_at(EntityKind::Domain, Role::Source, f, "Network.SourceDomain")
        .add_at(EntityKind::Ip, Role::Target, f, "Network.DestinationIpV4")
        .add_at(EntityKind::Ip, Role::Target, f, "Network.DestinationIpV6")
        .add_at(
            EntityKind::Domain,
            Role::Target,
            f,
            "Network.DestinationDomain",
        );
    if let Some(action) = get(f, "Action") {
        let inbound = str_at(action, "NetworkConnectionAction.ConnectionDirection") == Some("IN");
        let net_remote = if inbound { Role::Source } else { Role::Target };
        for (path, role) in [
            ("AwsApiCallAction.RemoteIpDetails.IpAddressV4", Role::Source),
            (
                "NetworkConnectionAction.RemoteIpDetails.IpAddressV4",
                net_remote,
            ),
        ] {
            e.add_at(EntityKind::Ip, role, action, path);
        }
        e.add_at(
            EntityKind::Domain,
            Role::Source,
            action,
            "AwsApiCallAction.DomainDetails.Domain",
        )
        .add_at(
            EntityKind::Domain,
            Role::Target,
            action,
            "DnsRequestAction.Domain",
        );
        if let Some(Value::Array(probes)) = get(action, "PortProbeAction.PortProbeDetails") {
            for p in probes {
                e.add_at(
                    EntityKind::Ip,
                    Role::Source,
                    p,
                    "RemoteIpDetails.IpAddressV4",
                )
                .add_at(
                    EntityKind::Ip,
                    Role::Target,
                    p,
                    "LocalIpDetails.IpAddressV4",
                );
            }
        }
    }
    // GuardDuty findings also carry their action flattened into ProductFields.
    e.add_at(
        EntityKind::Ip,
        Role::Source,
        f,
        "ProductFields.aws/guardduty/service/action/awsApiCallAction/remoteIpDetails/ipAddressV4",
    );
    if let Some(Value::Array(resources)) = get(f, "Resources") {
        for r in resources {
            let id = str_at(r, "Id");
            e.add(EntityKind::CloudResource, Role::Target, id);
            match str_at(r, "Type") {
                Some("AwsEc2Instance") => {
                    // `arn:aws:ec2:region:account:instance/i-0abc…` → `i-0abc…`
                    let instance = id.and_then(|i| i.rsplit('/').next());
                    e.add(EntityKind::Host, Role::Target, instance)
                        .add_all_at(
                            EntityKind::Ip,
                            Role::Target,
                            r,
                            "Details.AwsEc2Instance.IpV4Addresses",
                        )
                        .add_all_at(
                            EntityKind::Ip,
                            Role::Target,
                            r,
                            "Details.AwsEc2Instance.IpV6Addresses",
                        );
                }
                Some("AwsIamAccessKey") => {
                    e.add(
                        EntityKind::User,
                        Role::Actor,
                        fields::first_str(
                            r,
                            &[
                                "Details.AwsIamAccessKey.PrincipalName",
                                "Details.AwsIamAccessKey.UserName",
                            ],
                        ),
                    );
                }
                Some("AwsIamUser") => {
                    e.add_at(
                        EntityKind::User,
                        Role::Target,
                        r,
                        "Details.AwsIamUser.UserName",
                    );
                }
                _ => {}
            }
        }
    }
    if let Some(p) = str_at(f, "Process.Path") {
        e.add(EntityKind::Process, Role::Related, Some(p));
    }
    e.add_at(EntityKind::CloudResource, Role::Related, f, "AwsAccountId");
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use riposte_domain::EntityKind::{CloudResource, Domain, Host, Ip, User};
    use riposte_domain::Role::{Actor, Related, Source, Target};
    use serde_json::json;

    const FILE: &str = "alerts/guardduty/test-guardduty.log";
    const FILE12: &str = "alerts/guardduty/test-guard_duty.first12.log";
    const SECHUB: &str =
        "ocsf-examples/mappings/markdown/AWS/v1.0.0-rc.2/Security Hub/samples/Security Hub.raw";

    fn rule_id(d: &Decoded) -> String {
        alert(d).rule.as_ref().unwrap().id.clone().unwrap()
    }

    #[test]
    fn corpus_findings_decode_field_by_field() {
        let out = decode_file(&GuardDuty, FILE);
        // Four findings and an empty `{"findings":[]}` wrapper, which yields nothing.
        assert_eq!(out.len(), 4);

        let a = alert(&out[0]);
        assert_eq!(a.product, "AWS GuardDuty");
        assert_eq!(
            a.source_id.as_deref(),
            Some("d6012345678912345678912349f831b8f")
        );
        assert_eq!(rule_id(&out[0]), "Trojan:EC2/BlackholeTraffic!DNS");
        assert_eq!(
            a.title,
            "Blackholed domain name queried by EC2 instance i-99999999."
        );
        assert_eq!(
            a.description.as_deref(),
            Some("EC2 instance i-99999999 is querying a domain name of a blackholed domain.")
        );
        assert_eq!((a.severity.score, a.severity.original.as_str()), (50, "5"));
        assert_eq!(a.severity.label, SeverityLabel::Medium);
        assert_eq!(a.time.to_string(), "2022-11-22T12:22:20.934Z");
        assert_eq!(a.time_original, "2022-11-22T12:22:20.934Z");
        assert_eq!(a.tactics, ["Command and Control"]);
        assert!(a.techniques.is_empty());
        assert_eq!(ents(&out[0], Host, Target), ["i-99999999"]);
        assert_eq!(ents(&out[0], Ip, Target), ["175.16.199.1"]);
        assert_eq!(
            ents(&out[0], Domain, Target),
            ["generatedfindingdomainname"]
        );
        assert_eq!(ents(&out[0], CloudResource, Related), ["123412341234"]);
        assert!(ents_any(&out[0], User).is_empty());

        let a = alert(&out[1]);
        assert_eq!(
            rule_id(&out[1]),
            "Persistence:Kubernetes/SuccessfulAnonymousAccess"
        );
        assert_eq!((a.severity.score, a.severity.original.as_str()), (80, "8"));
        assert_eq!(a.severity.label, SeverityLabel::High);
        assert_eq!(a.tactics, ["Persistence"]);
        assert_eq!(ents(&out[1], User, Actor), ["system:anonymous"]);
        assert_eq!(ents(&out[1], Ip, Source), ["175.16.199.1"]);
        assert_eq!(
            ents(&out[1], CloudResource, Target),
            ["GeneratedFindingEKSClusterArn"]
        );
        assert!(ents_any(&out[1], Host).is_empty());

        let a = alert(&out[2]);
        assert_eq!(rule_id(&out[2]), "Discovery:Kubernetes/TorIPCaller");
        assert_eq!(a.tactics, ["Discovery"]);
        assert_eq!(a.time.to_string(), "2022-11-22T12:22:20.938Z");
        // The access key's IAM user and the Kubernetes user are the same name here.
        assert_eq!(ents(&out[2], User, Actor), ["generatedfindingusername"]);
        assert_eq!(
            ents(&out[2], CloudResource, Target),
            [
                "GeneratedFindingAccessKeyId",
                "GeneratedFindingEKSClusterArn"
            ]
        );
        assert_eq!(ents(&out[2], Ip, Source), ["175.16.199.1"]);

        let a = alert(&out[3]);
        assert_eq!(
            rule_id(&out[3]),
            "CredentialAccess:RDS/AnomalousBehavior.SuccessfulLogin"
        );
        assert_eq!(a.tactics, ["Credential Access"]);
        assert_eq!(a.time.to_string(), "2022-12-07T10:28:35.948Z");
        assert_eq!(ents(&out[3], User, Actor), ["generatedfindingusername"]);
        assert_eq!(ents(&out[3], Ip, Source), ["175.16.199.1"]);
        assert_eq!(
            ents(&out[3], CloudResource, Target),
            ["arn:aws:rds:us-east-1:123456789000:db:GeneratedFindingDBInstanceId"]
        );
        // The original is the finding, verbatim.
        assert_eq!(out[3].original()["service"]["count"], 1);
    }

    #[test]
    fn corpus_first12_decode_field_by_field() {
        let out = decode_file(&GuardDuty, FILE12);
        assert_eq!(out.len(), 12);
        let expect: [(&str, u8, &str, Option<&str>); 12] = [
            ("Impact:S3/MaliciousIPCaller", 80, "8", Some("Impact")),
            (
                "UnauthorizedAccess:IAMUser/TorIPCaller",
                50,
                "5",
                Some("Initial Access"),
            ),
            ("Impact:EC2/WinRMBruteForce", 20, "2", Some("Impact")),
            (
                "Backdoor:EC2/DenialOfService.Tcp",
                80,
                "8",
                Some("Command and Control"),
            ),
            (
                "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",
                50,
                "5",
                Some("Initial Access"),
            ),
            (
                "Trojan:EC2/BlackholeTraffic",
                50,
                "5",
                Some("Command and Control"),
            ),
            (
                "Recon:IAMUser/MaliciousIPCaller.Custom",
                50,
                "5",
                Some("Reconnaissance"),
            ),
            ("Policy:S3/AccountBlockPublicAccessDisabled", 20, "2", None),
            (
                "Trojan:EC2/DropPoint!DNS",
                50,
                "5",
                Some("Command and Control"),
            ),
            (
                "Execution:Kubernetes/ExecInKubeSystemPod",
                50,
                "5",
                Some("Execution"),
            ),
            (
                "Stealth:IAMUser/PasswordPolicyChange",
                20,
                "2",
                Some("Defense Evasion"),
            ),
            (
                "Discovery:IAMUser/AnomalousBehavior",
                20,
                "2",
                Some("Discovery"),
            ),
        ];
        for (i, (ty, score, orig, tactic)) in expect.iter().enumerate() {
            let a = alert(&out[i]);
            assert_eq!(rule_id(&out[i]), *ty, "record {i}");
            assert_eq!(a.severity.score, *score, "record {i}");
            assert_eq!(a.severity.original, *orig, "record {i}");
            assert_eq!(a.tactics.first().map(String::as_str), *tactic, "record {i}");
        }
        assert_eq!(alert(&out[7]).severity.label, SeverityLabel::Low);

        // 0: S3 API call from a malicious IP with an IAM user's key.
        assert_eq!(
            alert(&out[0]).source_id.as_deref(),
            Some("02bf27df0ab318783b0a8f63569dfd68")
        );
        assert_eq!(alert(&out[0]).time.to_string(), "2022-01-28T21:12:25.478Z");
        assert_eq!(ents(&out[0], User, Actor), ["generatedfindingusername"]);
        assert_eq!(ents(&out[0], Ip, Source), ["81.2.69.144"]);
        assert_eq!(
            ents(&out[0], CloudResource, Target),
            [
                "GeneratedFindingAccessKeyId",
                "arn:aws:s3:::bucketName",
                "GeneratedFindingS3Bucket"
            ]
        );
        assert_eq!(ents(&out[0], CloudResource, Related), ["973743533182"]);

        // 2: the instance is the actor (resourceRole ACTOR), brute-forcing outwards.
        assert_eq!(ents(&out[2], Host, Actor), ["i-99999999"]);
        assert!(ents(&out[2], Host, Target).is_empty());
        assert_eq!(
            ents(&out[2], Ip, Source),
            ["10.0.0.1", "81.2.69.144", "10.0.0.23"]
        );
        assert_eq!(ents(&out[2], Ip, Target), ["81.2.69.144"]);

        // 4: inbound connection to the instance: remote is the source, local the target.
        assert_eq!(ents(&out[4], Host, Target), ["i-99999999"]);
        assert_eq!(ents(&out[4], Ip, Source), ["81.2.69.144"]);
        assert_eq!(
            ents(&out[4], Ip, Target),
            ["10.0.0.1", "81.2.69.144", "10.0.0.23"]
        );

        // 8: DNS lookup of a drop point.
        assert_eq!(
            ents(&out[8], Domain, Target),
            ["generatedfindingdomainname"]
        );
        // 9: kubectl exec from 10.0.0.23 (sourceIPs) with remote 81.2.69.144.
        assert_eq!(ents(&out[9], Ip, Source), ["81.2.69.144", "10.0.0.23"]);
        assert_eq!(ents(&out[9], User, Actor), ["generatedfindingusername"]);
    }

    #[test]
    fn security_hub_asff_sample_decodes() {
        let out = decode_file(&GuardDuty, SECHUB);
        assert_eq!(out.len(), 1);
        let a = alert(&out[0]);
        // This corpus sample is a Security Hub control finding (it only refers to GuardDuty
        // findings in RelatedFindings): read by the generic ASFF rules.
        assert_eq!(a.product, "AWS Security Hub");
        assert_eq!(a.source_id.as_deref(), Some("test"));
        assert_eq!(a.time.to_string(), "2022-08-04T18:09:19.1Z");
        assert_eq!(a.time_original, "2022-08-04T18:09:19.100Z");
        assert_eq!(
            a.title,
            "EC2.19 Security groups should not allow unrestricted access to ports with high risk"
        );
        assert_eq!(a.severity.score, 10);
        assert_eq!(a.severity.original, "INFORMATIONAL");
        let rule = a.rule.as_ref().unwrap();
        assert_eq!(
            rule.id.as_deref(),
            Some("aws-foundational-security-best-practices/v/1.0.0/EC2.19")
        );
        assert_eq!(rule.name.as_deref(), Some("EC2.19"));
        assert!(a.tactics.is_empty());
        assert_eq!(
            ents(&out[0], CloudResource, Target),
            ["arn:aws:ec2:us-east-1:522536594833:security-group/sg-0daf160f08dfed499"]
        );
        assert_eq!(ents(&out[0], CloudResource, Related), ["522536594833"]);
        assert_eq!(
            ents_any(&out[0], riposte_domain::EntityKind::Process),
            ["/usr/sbin/syslogd"]
        );
    }

    /// A GuardDuty finding as Security Hub imports it, in the EventBridge event Security Hub
    /// sends. Built from AWS's documented ASFF and event formats, with the values of the
    /// corpus's OCSF rendering of the same finding
    /// (`ocsf-examples/encodings/ilf/example_logs/sechub-guardduty.ocsf`), since the corpus
    /// has no raw GuardDuty ASFF finding.
    fn sechub_event() -> Value {
        let finding_arn = "arn:aws:guardduty:us-east-2:111111111111:detector/1ac1bfceda6679698215d5d0EXAMPLE/finding/a6c556fcbc9bea427a19f8b787099a0b";
        json!({
            "version": "0",
            "id": "8e5622f9-d81c-4d81-612a-9319e7ee2506",
            "detail-type": "Security Hub Findings - Imported",
            "source": "aws.securityhub",
            "account": "111111111111",
            "time": "2023-09-19T15:05:25Z",
            "region": "us-east-2",
            "resources": [format!("arn:aws:securityhub:us-east-2::product/aws/guardduty/{finding_arn}")],
            "detail": {"findings": [{
                "SchemaVersion": "2018-10-08",
                "Id": finding_arn,
                "ProductArn": "arn:aws:securityhub:us-east-2::product/aws/guardduty",
                "ProductName": "GuardDuty",
                "CompanyName": "Amazon",
                "Region": "us-east-2",
                "GeneratorId": "arn:aws:guardduty:us-east-2:111111111111:detector/1ac1bfceda6679698215d5d0EXAMPLE",
                "AwsAccountId": "111111111111",
                "Types": ["TTPs/Defense Evasion/Stealth:IAMUser-CloudTrailLoggingDisabled"],
                "FirstObservedAt": "2023-09-19T14:55:09.000Z",
                "LastObservedAt": "2023-09-19T14:55:09.000Z",
                "CreatedAt": "2023-09-19T15:05:22.487Z",
                "UpdatedAt": "2023-09-19T15:05:22.487Z",
                "Severity": {"Product": 2, "Label": "LOW", "Normalized": 40},
                "Title": "AWS CloudTrail trail arn:aws:cloudtrail:us-east-2:111111111111:trail/delete-me was disabled.",
                "Description": "AWS CloudTrail trail arn:aws:cloudtrail:us-east-2:111111111111:trail/delete-me was disabled by Admin calling DeleteTrail under unusual circumstances.",
                "ProductFields": {
                    "aws/guardduty/service/action/actionType": "AWS_API_CALL",
                    "aws/guardduty/service/action/awsApiCallAction/api": "DeleteTrail",
                    "aws/guardduty/service/action/awsApiCallAction/remoteIpDetails/ipAddressV4": "52.94.133.131",
                    "aws/guardduty/service/resourceRole": "TARGET"
                },
                "Resources": [{
                    "Type": "AwsIamAccessKey",
                    "Id": "AWS::IAM::AccessKey:ASIATMJPC7EXAMPLE",
                    "Partition": "aws",
                    "Region": "us-east-2",
                    "Details": {"AwsIamAccessKey": {
                        "PrincipalId": "AROATMJPC7YEXAMPLE:example",
                        "PrincipalName": "Admin",
                        "PrincipalType": "AssumedRole"
                    }}
                }],
                "Action": {
                    "ActionType": "AWS_API_CALL",
                    "AwsApiCallAction": {
                        "Api": "DeleteTrail",
                        "ServiceName": "cloudtrail.amazonaws.com",
                        "CallerType": "Remote IP",
                        "RemoteIpDetails": {"IpAddressV4": "52.94.133.131"}
                    }
                },
                "RecordState": "ACTIVE",
                "Workflow": {"Status": "NEW"}
            }]}
        })
    }

    #[test]
    fn security_hub_event_with_guardduty_finding() {
        let ev = sechub_event();
        assert!(GuardDuty.recognises(&ev));
        let out = GuardDuty.decode(ev.clone()).unwrap();
        assert_eq!(out.len(), 1);
        let a = alert(&out[0]);
        assert_eq!(a.product, "AWS GuardDuty");
        assert_eq!(
            rule_id(&out[0]),
            "Stealth:IAMUser/CloudTrailLoggingDisabled"
        );
        assert_eq!(a.tactics, ["Defense Evasion"]);
        assert_eq!(
            (a.severity.score, a.severity.original.as_str()),
            (30, "LOW")
        );
        assert_eq!(a.time.to_string(), "2023-09-19T15:05:22.487Z");
        assert!(
            a.source_id
                .as_deref()
                .unwrap()
                .ends_with("/finding/a6c556fcbc9bea427a19f8b787099a0b")
        );
        let mut out = out;
        riposte_domain::Canonicaliser::default().apply_all(out[0].entities_mut());
        assert_eq!(ents(&out[0], Ip, Source), ["52.94.133.131"]);
        assert_eq!(ents(&out[0], User, Actor), ["admin"]);
        assert_eq!(
            ents(&out[0], CloudResource, Target),
            ["AWS::IAM::AccessKey:ASIATMJPC7EXAMPLE"]
        );
        // The finding alone (bare ASFF) reads the same.
        let bare = ev["detail"]["findings"][0].clone();
        assert!(GuardDuty.recognises(&bare));
        assert_eq!(
            rule_id(&GuardDuty.decode(bare).unwrap()[0]),
            "Stealth:IAMUser/CloudTrailLoggingDisabled"
        );
    }

    #[test]
    fn eventbridge_and_wrapper_forms() {
        let line = corpus_records(FILE12, crate::InputKind::Json).remove(6);
        // EventBridge's documented envelope around the finding.
        let ev = json!({
            "version": "0", "id": "c8c4daa7-a20c-2f03-0070-b7393dd542ad",
            "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
            "account": "973743533182", "time": "2022-01-28T21:12:30Z", "region": "us-east-2",
            "resources": [], "detail": line.clone()
        });
        assert!(GuardDuty.recognises(&ev));
        let out = GuardDuty.decode(ev).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(rule_id(&out[0]), "Recon:IAMUser/MaliciousIPCaller.Custom");
        assert_eq!(out[0].source_id(), Some("08bf27df0ab239e64337c7a2c78f3f6b"));

        let wrapped = json!({"findings": [line.clone(), line]});
        assert!(GuardDuty.recognises(&wrapped));
        assert_eq!(GuardDuty.decode(wrapped).unwrap().len(), 2);
        assert!(
            GuardDuty
                .decode(json!({"findings": []}))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn severity_bands() {
        let sev = |s: Value| severity_of(&json!({ "severity": s })).unwrap();
        assert_eq!(sev(json!(1.0)).score, 20);
        assert_eq!(sev(json!(3.9)).score, 39);
        assert_eq!(sev(json!(4.0)).score, 40);
        assert_eq!(sev(json!(6.9)).label, SeverityLabel::Medium);
        assert_eq!(sev(json!(7.0)).label, SeverityLabel::High);
        assert_eq!(sev(json!(8.9)).score, 89);
        assert_eq!(sev(json!(9.0)).label, SeverityLabel::Critical);
        assert_eq!(sev(json!(8.5)).original, "8.5");
        assert_eq!(sev(json!(0.5)).score, 10);
    }

    #[test]
    fn recognises_guardduty_only() {
        for f in [FILE, FILE12, SECHUB] {
            for r in corpus_records(f, crate::InputKind::Json) {
                assert!(GuardDuty.recognises(&r), "{f}");
            }
        }
        for f in [
            "alerts/suricata/eve/test-eve-small.log",
            "alerts/okta/system/test-okta-system-events.log",
            "alerts/crowdstrike/alert/test-alert.log",
            "alerts/sentinelone/alert/test-pipeline-alert.log",
        ] {
            for r in corpus_records(f, crate::InputKind::Json) {
                assert!(!GuardDuty.recognises(&r), "{f}");
            }
        }
    }

    #[test]
    fn bad_records_name_the_field() {
        let mut f = corpus_records(FILE, crate::InputKind::Json).remove(0);
        let good = f.clone();
        f.as_object_mut().unwrap().remove("updatedAt");
        f.as_object_mut().unwrap().remove("createdAt");
        assert_eq!(GuardDuty.decode(f).unwrap_err().field, "updatedAt");

        let mut f = good.clone();
        f["severity"] = json!("high");
        assert_eq!(GuardDuty.decode(f).unwrap_err().field, "severity");
        let mut f = good.clone();
        f["severity"] = json!(42);
        assert_eq!(GuardDuty.decode(f).unwrap_err().field, "severity");
        let mut f = good.clone();
        f["type"] = json!(7);
        assert_eq!(GuardDuty.decode(f.clone()).unwrap_err().field, "type");
        let e = GuardDuty
            .decode(json!({"findings": [good.clone(), f]}))
            .unwrap_err();
        assert_eq!(e.field, "findings[1].type");
        let e = GuardDuty
            .decode(json!({"detail-type": "GuardDuty Finding", "detail": {"type": "x"}}))
            .unwrap_err();
        assert_eq!(e.field, "detail.updatedAt");
        let e = GuardDuty
            .decode(json!({"detail-type": "EC2 Instance State-change Notification", "detail": {}}))
            .unwrap_err();
        assert_eq!(e.field, "detail-type");
        let mut ev = sechub_event();
        ev["detail"]["findings"][0]["Severity"]["Label"] = json!("SPICY");
        let e = GuardDuty.decode(ev).unwrap_err();
        assert_eq!(e.field, "detail.findings[0].Severity.Label");
        assert_eq!(
            GuardDuty.decode(json!({"findings": 3})).unwrap_err().field,
            "findings"
        );
        assert_eq!(GuardDuty.decode(json!("x")).unwrap_err().field, "$");
    }
}
