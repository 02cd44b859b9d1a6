"""Policy rules: each is a small function returning a verdict and its reasons.

A candidate passes when every rule that applies to it passes; a rejection names the rule and
the fact that triggered it (from the catalog), so every exclusion can be explained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..catalog import Catalog
from ..catalog.schema import Accelerator, ApiPrice, CloudOffer, Engine, Model
from ..errors import SpecError
from .scenario import COUNTRY_FIELDS, Policy

COMMERCIAL = ("permissive", "commercial_with_conditions")
OWNED = ("on_prem", "air_gapped")


@dataclass
class Verdict:
    ok: bool = True
    reasons: list[str] = field(default_factory=list)

    def fail(self, rule: str, why: str) -> None:
        self.ok = False
        field = rule_field(rule, why)
        self.reasons.append(f"{rule}: {why}" + (f" ({field})" if field else ""))

    def merge(self, other: Verdict) -> Verdict:
        if not other.ok:
            self.ok = False
            self.reasons += other.reasons
        return self


# the scenario field each policy rule reads: (the allow-list form, the deny-list form) where there are two
_RULE_FIELDS = {"deployment": ("deployment", None), "air-gapped": ("deployment", None),
                "data residency": ("data_residency", None), "model licence": ("model_licenses", None),
                "licence territory": ("buyer_country", None),
                "export control": ("buyer_country / policy.allow_export_controlled", None),
                "provider jurisdiction": ("allow_provider_countries", "deny_provider_countries"),
                "hardware vendor": ("allow_hardware_vendors", "deny_hardware_vendors"),
                "hardware origin": ("allow_hardware_countries", "deny_hardware_countries"),
                "model origin": ("allow_model_countries", "deny_model_countries")}


def rule_field(rule: str, why: str) -> str | None:
    """The scenario field that decided a policy rule's verdict ('policy.deny_model_countries'), so a
    reason says what to change; None for rules that are not policy (memory, latency …)."""
    fields = _RULE_FIELDS.get(rule)
    if fields is None:
        return None
    allow, deny = fields
    return f"policy.{deny if deny and 'denied' in why else allow}"


def _merged(p: Policy, cat: Catalog) -> Policy:
    if not p.preset:
        return p
    preset = cat.policy_presets.get(p.preset)
    given = p.model_dump(exclude_unset=True)
    given.pop("preset", None)
    return Policy.model_validate({**preset.policy, **given})


def default_buyer(p: Policy, cat: Catalog) -> str | None:
    """The buyer's country when the policy does not say: the one country data must stay in, if it names a
    single country (not a group such as EU)."""
    if p.buyer_country or not p.data_residency or len(p.data_residency) != 1:
        return None
    code = p.data_residency[0]
    return None if cat.country_groups.find(code) is not None else code.upper()


def check_countries(p: Policy, cat: Catalog) -> None:
    """Every country field holds ISO 3166 alpha-2 codes or a country group the catalog knows: a name such
    as 'Europe' or 'Germany' would otherwise match nothing and exclude every option without saying why."""
    groups = [g.id for g in cat.country_groups]
    for name in COUNTRY_FIELDS:
        value = getattr(p, name, None)
        for code in [value] if isinstance(value, str) else (value or []):
            if cat.country_groups.find(code) is not None or (len(code) == 2 and code.isascii() and code.isalpha()):
                continue
            region = cat.regions.find(code)
            hint = (f"did you mean {region.country}?" if region is not None
                    else f"groups: {', '.join(groups)}")
            raise SpecError(f"policy.{name}", f"{code!r} is neither an ISO 3166 country code (two letters: DE, FR, "
                            f"US …) nor a country group the catalog knows; {hint}")


def resolve_policy(p: Policy, cat: Catalog) -> Policy:
    """A preset's fields under the scenario's own (the scenario's explicit fields win); buyer_country
    defaults from a single-country data_residency (see `assumptions`)."""
    merged = _merged(p, cat)
    check_countries(merged, cat)
    buyer = default_buyer(merged, cat)
    return merged.model_copy(update={"buyer_country": buyer}) if buyer else merged


def assumptions(p: Policy, cat: Catalog) -> list[str]:
    """What the planner assumed about the policy that the scenario did not state."""
    merged = _merged(p, cat)
    buyer = default_buyer(merged, cat)
    if buyer:
        return [f"policy.buyer_country {buyer}, taken from data_residency [{merged.data_residency[0]}] "  # type: ignore[index]
                "(export controls depend on it; set buyer_country to state it)"]
    return []


def expand_regions(codes: list[str] | None, cat: Catalog) -> set[str] | None:
    """ISO codes and group names (EU, EEA) -> a set of ISO codes; None: anywhere."""
    if codes is None:
        return None
    out: set[str] = set()
    for c in codes:
        g = cat.country_groups.find(c)
        if g is not None:
            out |= set(g.members)
        else:
            out.add(c.upper())
    return out


def licence_classes(p: Policy) -> set[str]:
    out: set[str] = set()
    for c in p.model_licenses:
        out |= set(COMMERCIAL) if c == "commercial" else {c}
    return out


def model_rule(m: Model, p: Policy, cat: Catalog, runs_weights: bool = True) -> Verdict:
    """The model's licence and origin against the policy. `runs_weights`: the buyer runs the weights (owned
    or rented GPUs), where a licence's exclusion of the buyer's country applies; an API's customer is an end
    user of the provider's service."""
    v = Verdict()
    allowed = licence_classes(p)
    if m.license_class not in allowed:
        v.fail("model licence", f"{m.id} is {m.license} ({m.license_class}); the policy allows "
                                f"{', '.join(sorted(allowed))}")
    if runs_weights and m.license_excludes:
        excluded = expand_regions(list(m.license_excludes), cat) or set()
        residency = expand_regions(p.data_residency, cat)
        if p.buyer_country and p.buyer_country.upper() in excluded:
            v.fail("licence territory", f"{m.license} grants no rights to run {m.id} to a buyer based in "
                                        f"{', '.join(m.license_excludes)} (buyer_country {p.buyer_country})")
        elif not p.buyer_country and residency and residency <= excluded:
            v.fail("licence territory", f"{m.license} grants no rights to run {m.id} to a buyer based in "
                                        f"{', '.join(m.license_excludes)}, and the data must stay there "
                                        f"(data_residency {', '.join(p.data_residency or [])}); set buyer_country "
                                        "if the buyer is based elsewhere")
    if m.country in p.deny_model_countries:
        v.fail("model origin", f"{m.id} comes from {m.organization} ({m.country}), a denied country")
    if p.allow_model_countries is not None and m.country not in p.allow_model_countries:
        v.fail("model origin", f"{m.id} comes from {m.organization} ({m.country}), not an allowed country")
    return v


def vendor_named(vendor: str, names) -> bool:
    """Whether `vendor` (as the catalog writes it: 'NVIDIA', 'Intel (Habana Labs)') is one of `names`, letter
    case aside, a name matching the catalog's whole name or its first word ('intel', 'huawei')."""
    whole, first = vendor.casefold(), vendor.split()[0].casefold() if vendor.split() else ""
    return any(n.casefold() in (whole, first) for n in names)


def hardware_rule(a: Accelerator, p: Policy) -> Verdict:
    v = Verdict()
    if p.allow_hardware_vendors is not None and not vendor_named(a.vendor, p.allow_hardware_vendors):
        v.fail("hardware vendor", f"{a.id} is made by {a.vendor}, not an allowed vendor")
    if vendor_named(a.vendor, p.deny_hardware_vendors):
        v.fail("hardware vendor", f"{a.id} is made by {a.vendor}, a denied vendor")
    country = a.designer_country or "unknown"
    if country in p.deny_hardware_countries:
        v.fail("hardware origin", f"{a.id} is designed in {country}, a denied country")
    if p.allow_hardware_countries is not None and country not in p.allow_hardware_countries:
        v.fail("hardware origin", f"{a.id} is designed in {country}, not an allowed country")
    if not p.allow_export_controlled:
        v.merge(export_rule(a, p))
    return v


def export_rule(a: Accelerator, p: Policy) -> Verdict:
    """The catalog's export-control facts for the buyer's country."""
    v = Verdict()
    ec = a.export_control
    buyer = (p.buyer_country or "").upper()
    if ec is None or ec.us_china == "unknown":
        v.fail("export control", f"{a.id}'s export-control status is unknown in the catalog")
        return v
    if not buyer:
        if ec.us_china != "not_controlled":
            v.fail("export control", f"{a.id} is {ec.us_china.replace('_', ' ')} under US rules, which depends on the "
                                     "buyer's country; the policy gives none (set policy.buyer_country)")
        return v
    china = buyer in ("CN", "MO")
    if china and ec.us_china in ("license_required", "china_specific"):
        v.fail(
            "export control", f"{a.id} needs a US export licence for a buyer in {buyer} ({ec.regime or ec.us_china})"
        )
    if not china and ec.us_china == "restricted_by_origin":
        v.fail("export control", f"{a.id} is restricted by origin for a buyer outside China "
                                 f"({ec.regime or 'US General Prohibition 10 guidance'})")
    return v


def owned_rule(engine: Engine, p: Policy) -> Verdict:
    """Own hardware: allowed when on_prem or air_gapped is; air_gapped in the policy (a requirement,
    whatever else is listed) needs an engine that runs without a network connection."""
    v = Verdict()
    modes = set(p.deployment)
    if not modes & set(OWNED):
        v.fail("deployment", "the policy does not allow owned hardware (on_prem or air_gapped)")
    elif "air_gapped" in modes and not engine.offline_capable:
        v.fail("air-gapped", f"{engine.id} cannot run without a network connection")
    return v


def provider_rule(name: str, country: str, p: Policy) -> Verdict:
    v = Verdict()
    if country in p.deny_provider_countries:
        v.fail("provider jurisdiction", f"{name} is under {country} jurisdiction, a denied country")
    if p.allow_provider_countries is not None and country not in p.allow_provider_countries:
        v.fail("provider jurisdiction", f"{name} is under {country} jurisdiction, not an allowed country")
    return v


def cloud_rule(o: CloudOffer, p: Policy, cat: Catalog) -> Verdict:
    v = Verdict()
    modes = set(p.deployment)
    if "air_gapped" in modes:
        v.fail("air-gapped", "an air-gapped deployment cannot use a cloud")
        return v
    if o.sovereign and not modes & {"sovereign_cloud", "public_cloud"}:
        v.fail("deployment", "the policy allows no cloud")
    if not o.sovereign and "public_cloud" not in modes:
        v.fail("deployment", f"{o.provider} {o.region} is a public (not sovereign) cloud; the policy allows "
                             f"{', '.join(sorted(modes & {'sovereign_cloud'})) or 'no cloud'}")
    allowed = expand_regions(p.data_residency, cat)
    if allowed is not None and o.region_country not in allowed:
        v.fail("data residency", f"{o.provider} {o.region} keeps data in {o.region_country}, outside "
                                 f"{', '.join(p.data_residency or [])}")
    v.merge(provider_rule(o.provider, o.provider_country, p))
    return v


def api_rule(a: ApiPrice, p: Policy, cat: Catalog, model: Model | None) -> Verdict:
    v = Verdict()
    if "air_gapped" in p.deployment:
        v.fail("air-gapped", "an air-gapped deployment cannot call an external API")
        return v
    if "api" not in p.deployment:
        v.fail("deployment", "the policy does not allow external APIs")  # and the rules below, all said
    allowed = expand_regions(p.data_residency, cat)
    if allowed is not None:
        regions = expand_regions(list(a.data_regions), cat) or set()
        if "GLOBAL" in regions or not regions or not regions <= allowed:
            v.fail("data residency", f"{a.provider} {a.model} processes data in {', '.join(a.data_regions)}, "
                                     f"not only in {', '.join(p.data_residency or [])}")
    v.merge(provider_rule(a.provider, a.provider_country, p))
    if model is not None:
        v.merge(model_rule(model, p, cat, runs_weights=False))
    elif a.weights == "closed" and licence_classes(p) == {"permissive"}:
        v.fail("model licence", f"{a.model} is a closed model; the policy allows permissive licences only")
    return v


# ---------------------------------------------------------------------------------------------
# When nothing passes: which rule decided, and which scenario value would change the answer
# ---------------------------------------------------------------------------------------------

POLICY_RULES = ("deployment", "air-gapped", "data residency", "provider jurisdiction", "hardware vendor",
                "hardware origin", "export control", "model licence", "licence territory", "model origin")


def _candidates(p: Policy, models: list[Model], hardware: list[Accelerator], engines: list[Engine],
                cat: Catalog, cloud: bool = True, api: bool = True) -> list[tuple[str, Verdict]]:
    """Every owned configuration, cloud offer and API the search looks at, with its policy verdict."""
    out = []
    for m in models:
        mv = model_rule(m, p, cat)
        for a in hardware:
            hv = hardware_rule(a, p)
            for e in engines:
                out.append((f"{m.id}:{a.id}:{e.id}", Verdict().merge(mv).merge(hv).merge(owned_rule(e, p))))
    hw = {a.id for a in hardware}
    if cloud:
        out += [(f"cloud:{o.id}", cloud_rule(o, p, cat)) for o in cat.cloud_offers if o.accelerator in hw]
    by_id = {m.id: m for m in models}
    if api:
        out += [(f"api:{a.id}", api_rule(a, p, cat, by_id[a.catalog_model]))
                for a in cat.api_prices if a.catalog_model in by_id]
    return out


def _relaxed(p: Policy, models: list[Model], hardware: list[Accelerator]) -> list[tuple[str, Any, Policy]]:
    """One scenario field changed at a time, toward allowing more: (field, new value, policy)."""
    def with_(name: str, value: Any) -> tuple[str, Any, Policy]:
        return f"policy.{name}", value, p.model_copy(update={name: value})

    out = []
    if not p.buyer_country:
        for c in sorted({a.designer_country for a in hardware if a.designer_country}):
            out.append(with_("buyer_country", c))
    if not p.allow_export_controlled:
        out.append(with_("allow_export_controlled", True))
    for name in ("deny_hardware_countries", "deny_hardware_vendors", "deny_model_countries", "deny_provider_countries"):
        for x in getattr(p, name):
            out.append(with_(name, [y for y in getattr(p, name) if y != x]))
    for name in ("allow_hardware_countries", "allow_hardware_vendors", "allow_model_countries",
                 "allow_provider_countries", "data_residency"):
        if getattr(p, name) is not None:
            out.append(with_(name, None))
    for cls in sorted({m.license_class for m in models} - licence_classes(p)):
        out.append(with_("model_licenses", [*p.model_licenses, cls]))
    modes = list(p.deployment)
    if "air_gapped" in modes:
        out.append(with_("deployment", [x for x in modes if x != "air_gapped"] or ["on_prem"]))
    for mode in ("on_prem", "sovereign_cloud", "public_cloud", "api"):
        if mode not in modes and "air_gapped" not in modes:
            out.append(with_("deployment", [*modes, mode]))
    return out


def explain_no_option(p: Policy, models: list[Model], hardware: list[Accelerator], engines: list[Engine],
                      cat: Catalog, cloud: bool = True, api: bool = True) -> dict[str, Any] | None:
    """When no candidate passes the policy: the relaxations (one field each) that would let some pass,
    most candidates first, each with the rule that had stopped them. None when some candidate passes (then
    the policy did not decide)."""
    base = _candidates(p, models, hardware, engines, cat, cloud, api)
    if any(v.ok for _, v in base):
        return None
    before = dict(base)
    found = []
    for fld, value, q in _relaxed(p, models, hardware):
        freed = [name for name, v in _candidates(q, models, hardware, engines, cat, cloud, api) if v.ok]
        if not freed:
            continue
        rules = sorted({r.split(":")[0] for n in freed for r in before[n].reasons})
        found.append({"field": fld, "value": value, "passes": len(freed), "examples": freed[:3], "rules": rules,
                      "owned": sum(1 for n in freed if not n.startswith(("cloud:", "api:")))})
    # most owned configurations first, then most candidates; a missing fact (the buyer's country) before a
    # rule to loosen
    found.sort(key=lambda x: (-x["owned"], -x["passes"], x["field"] != "policy.buyer_country", x["field"]))
    counts: dict[str, int] = {}
    for _, v in base:
        for r in {x.split(":")[0] for x in v.reasons}:
            counts[r] = counts.get(r, 0) + 1
    return {"candidates": len(base), "rules": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
            "relaxations": found}
