"""The economics as pure, vectorised formulas (every input may be a float or a numpy array
of Monte Carlo draws). Money in USD, energy in kWh, time in months and years.

On premise, for a fleet that was bought (see :mod:`llmplan.cost.purchase`; cash view, CapEx
paid at month 0, OpEx monthly from month 1):

    hardware       = hosts + GPUs × GPU price                 (appliances: GPUs × all-in price)
    capex          = hardware × (1 + install %) + ToR switches + fabric + storage
    contracted kW  = GPUs × TDP + host maximum power          (what a colocation contract is sized on)
    metered kW     = GPUs × TDP × (idle + (light − idle) × active + (busy − light) × utilisation)
                     + host maximum × host draw %       (active: share of time with a request in flight)
    energy kWh/yr  = metered kW × PUE × 8,760
    opex/yr        = energy × $/kWh + contracted kW × colocation $/kW-month × 12 + maintenance % × hardware
                     + (staff base + staff per server × servers) × $/FTE-yr + licences
    licences       = Σ price/yr × max(0, horizon − years bundled with the purchase)   (over the horizon)
    residual       = hardware × resale % at the horizon (a resale curve, not book value)
    TCO            = capex + opex × horizon − residual
    NPV            = capex + Σ_m opex/12 / (1 + r)^(m/12) − residual / (1 + r)^horizon
    $/1M tokens    = TCO / (tokens served over the horizon / 10^6)

Cloud GPUs (the same fleet): on-demand and spot pay the GPU-hours used; a 1- or 3-year
commitment pays every hour of the term whether used or not. APIs: tokens × price, cached
input at its own price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..units import Arr

HOURS_PER_YEAR = 8760.0
MONTHS_PER_YEAR = 12


@dataclass(frozen=True)
class OnPremInputs:
    """A fleet's totals and the assumptions that price it. Every field may be an array of draws."""

    servers: Arr  # servers, workstations or appliances bought
    gpus: Arr  # accelerators bought
    gpu_price_usd: Arr  # per accelerator (appliances: the machine's all-in price)
    host_cost_usd: Arr  # all hosts together (appliances: 0)
    gpu_tdp_w: Arr  # per accelerator (appliances: the machine's maximum power)
    host_power_w: Arr  # all hosts' maximum power together
    horizon_years: Arr
    residual_pct: Arr  # resale value at the horizon, % of hardware
    install_pct: Arr
    storage_servers: Arr  # servers that get extra storage (data-centre ones)
    storage_usd_per_server: Arr
    tor_switches: Arr
    tor_switch_usd: Arr
    fabric_servers: Arr  # servers wired into a multi-server fabric
    fabric_usd_per_server: Arr
    maintenance_pct_per_year: Arr
    staff_fte_base: Arr
    staff_fte_per_server: Arr
    staff_usd_per_fte_year: Arr
    electricity_usd_per_kwh: Arr
    pue: Arr
    colocation_usd_per_kw_month: Arr
    utilisation_pct: Arr  # load / capacity, mean over the day
    active_pct: Arr  # share of time the engines have a request in flight (≥ utilisation; see active_pct())
    busy_power_pct_of_tdp: Arr
    light_power_pct_of_tdp: Arr  # working on a few requests (memory-bound decode)
    idle_power_pct_of_tdp: Arr
    host_power_draw_pct: Arr
    discount_rate_pct: Arr
    carbon_g_per_kwh: Arr
    depreciation_years: Arr  # accounting life, for the reported straight-line depreciation
    licences: tuple[tuple[float, float], ...] = ()  # (USD per year for the fleet, years bundled)
    licence_price_factor: Arr = 1.0  # multiplies every licence price (the Monte Carlo varies it)


@dataclass(frozen=True)
class OnPremResult:
    capex_hardware_usd: Arr
    capex_usd: Arr
    capex_items: dict[str, Arr]
    opex_items_per_year: dict[str, Arr]
    opex_usd_per_year: Arr
    licence_usd_horizon: Arr
    residual_usd: Arr
    tco_usd: Arr
    npv_usd: Arr
    depreciation_usd_per_year: Arr
    it_kw: Arr
    contracted_kw: Arr
    energy_kwh_per_year: Arr
    emissions_kg_per_year: Arr
    _licences: tuple[tuple[Arr, float], ...] = ()

    def cumulative_by_month(self, months: int) -> np.ndarray:
        """Cumulative cash out at the end of each month 0..months (capex at 0, licences from the
        month their bundled years end, residual credited at the end)."""
        m = np.arange(months + 1)
        other = float(np.asarray(self.opex_usd_per_year)) - float(np.asarray(self.opex_items_per_year["software"]))
        cum = float(np.asarray(self.capex_usd)) + other / MONTHS_PER_YEAR * m
        for usd, free in self._licences:
            cum = cum + float(np.asarray(usd)) / MONTHS_PER_YEAR * np.maximum(m - free * MONTHS_PER_YEAR, 0)
        cum = np.asarray(cum, dtype=float)
        cum[-1] -= float(np.asarray(self.residual_usd))
        return cum


def active_pct(rate_per_replica_by_hour, residence_s) -> float:
    """The share of time (%) an engine replica has at least one request in flight, over a day of hourly
    request rates (per replica): with Poisson arrivals the requests in flight are Poisson with mean λ × R
    (M/G/∞, R the time one request spends in the engine), so the engine is idle with probability e^(−λR).
    R at light load (one request alone) makes it a lower bound where requests slow each other."""
    lam = np.asarray(rate_per_replica_by_hour, dtype=float)
    return float(100 * np.mean(1 - np.exp(-lam * float(residence_s))))


def onprem(x: OnPremInputs) -> OnPremResult:
    hw = x.host_cost_usd + x.gpus * x.gpu_price_usd
    install = hw * x.install_pct / 100
    network = x.tor_switches * x.tor_switch_usd + x.fabric_servers * x.fabric_usd_per_server
    storage = x.storage_servers * x.storage_usd_per_server
    capex = hw + install + network + storage
    u = x.utilisation_pct / 100
    a = np.maximum(x.active_pct / 100, u)  # an engine carrying a load share u is working at least that share
    # idle when nothing is in flight; while working, the light (few requests) draw, rising to the busy one with
    # the load: with a = u (working only in proportion to load) this is idle + (busy − idle) × u
    draw_pct = (x.idle_power_pct_of_tdp + (x.light_power_pct_of_tdp - x.idle_power_pct_of_tdp) * a
                + (x.busy_power_pct_of_tdp - x.light_power_pct_of_tdp) * u)
    it_kw = (x.gpus * x.gpu_tdp_w * draw_pct / 100 + x.host_power_w * x.host_power_draw_pct / 100) / 1000
    contracted_kw = (x.gpus * x.gpu_tdp_w + x.host_power_w) / 1000
    energy_kwh = it_kw * x.pue * HOURS_PER_YEAR
    licences = tuple((usd * x.licence_price_factor, free) for usd, free in x.licences)
    licence_total = sum((usd * np.maximum(x.horizon_years - free, 0) for usd, free in licences), 0.0)
    items = {
        "energy": energy_kwh * x.electricity_usd_per_kwh,
        "colocation": contracted_kw * x.colocation_usd_per_kw_month * MONTHS_PER_YEAR,
        "maintenance": hw * x.maintenance_pct_per_year / 100,
        "staff": (x.staff_fte_base + x.staff_fte_per_server * x.servers) * x.staff_usd_per_fte_year,
        "software": licence_total / x.horizon_years,  # the horizon's licence bill, spread evenly
    }
    opex = sum(items.values())
    other = opex - items["software"]
    residual = hw * x.residual_pct / 100
    tco = capex + other * x.horizon_years + licence_total - residual
    paid_licences = sum((usd / MONTHS_PER_YEAR * (discounted_monthly(1.0, x.horizon_years, x.discount_rate_pct)
                                                  - discounted_monthly(1.0, np.minimum(free, x.horizon_years),
                                                                       x.discount_rate_pct))
                         for usd, free in licences), 0.0)
    npv = (capex + discounted_monthly(other / MONTHS_PER_YEAR, x.horizon_years, x.discount_rate_pct) + paid_licences
           - residual / (1 + x.discount_rate_pct / 100) ** x.horizon_years)
    return OnPremResult(
        capex_hardware_usd=hw, capex_usd=capex,
        capex_items={"hardware": hw, "installation": install, "network": network, "storage": storage},
        opex_items_per_year=items, opex_usd_per_year=opex, licence_usd_horizon=licence_total, residual_usd=residual,
        tco_usd=tco, npv_usd=npv, depreciation_usd_per_year=hw / x.depreciation_years, it_kw=it_kw,
        contracted_kw=contracted_kw, energy_kwh_per_year=energy_kwh,
        emissions_kg_per_year=energy_kwh * x.carbon_g_per_kwh / 1000, _licences=licences)


def discounted_monthly(amount_per_month, horizon_years, rate_pct):
    """Σ_{m=1}^{12 H} amount / (1 + r)^(m/12), in closed form (a geometric series)."""
    months = np.rint(np.asarray(horizon_years, dtype=float) * MONTHS_PER_YEAR)
    r = np.asarray(rate_pct, dtype=float) / 100
    k = np.log1p(r) / MONTHS_PER_YEAR  # q = e^-k; written with expm1 so tiny rates stay exact
    tiny = k < 1e-12
    safe = np.where(tiny, 1.0, k)
    series = np.where(tiny, months, np.exp(-safe) * np.expm1(-months * safe) / np.expm1(-safe))
    return amount_per_month * series


def cloud_fleet_cost(gpus, hours_per_year, usd_per_gpu_hour, horizon_years, committed: bool):
    """A rented fleet over the horizon. Committed: every hour of the term is paid."""
    hours = HOURS_PER_YEAR if committed else hours_per_year
    return gpus * hours * usd_per_gpu_hour * horizon_years


def api_cost(input_tokens, output_tokens, cached_share_pct, input_usd_per_mtok, output_usd_per_mtok,
             cached_usd_per_mtok):
    """Per-token bill: uncached input, cached input at its own price, output."""
    cached = input_tokens * cached_share_pct / 100
    return ((input_tokens - cached) * input_usd_per_mtok + cached * cached_usd_per_mtok
            + output_tokens * output_usd_per_mtok) / 1e6


def breakeven_month(owned_cumulative: np.ndarray, alternative_cumulative: np.ndarray) -> int | None:
    """First month at which owning has cost no more in total than the alternative (None: never
    within the horizon)."""
    ok = np.nonzero(owned_cumulative <= alternative_cumulative)[0]
    return int(ok[0]) if len(ok) else None
