"""Synthetic records for the simulated hub, derived from the ID number alone.

The simulated hub answers for any valid ID number, so a card nobody listed beforehand still works
end to end. Every value here comes from a SHA-256 of the ID number (never from ``random``, whose
algorithms may change between Python versions), so the same person gets the same record in every
run and on every machine: social insurance facts, a postal address, and which authority decides
an application. A few listed people exercise the refusals.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from flows.hub import DocumentField

ERRAND_SSC_ENROLLMENT_PROOF = "ssc_enrollment_proof"

# Errands the simulated hub can run, with the title printed on the document.
ERRAND_TITLES: Mapping[str, str] = MappingProxyType(
    {ERRAND_SSC_ENROLLMENT_PROOF: "社会保险参保证明"}
)

# The reasons a hub gives when it will not issue a document for a valid person.
NOT_ENROLLED = "not_enrolled"
SUSPENDED = "suspended"
DECEASED = "deceased"


@dataclass(frozen=True)
class SpecialPerson:
    """A listed test person the hub refuses; ``label`` is what the control panel shows."""

    id_number: str
    refusal: str
    label: str


# Valid check digits, made-up people. Refer to them through these constants, not the literals.
SPECIAL_PEOPLE: Mapping[str, SpecialPerson] = MappingProxyType(
    {
        person.id_number: person
        for person in (
            SpecialPerson("110101199003070038", NOT_ENROLLED, "未参保 (not enrolled)"),
            SpecialPerson("320102197508150048", SUSPENDED, "暂停参保 (suspended)"),
            SpecialPerson("440103193801010058", DECEASED, "已死亡 (deceased)"),
        )
    }
)

# 行政区划代码: the first two digits name the province, the first four the prefecture. A short
# table is enough for believable proofs; anything else falls back to a generic place.
_PROVINCES: Mapping[str, str] = MappingProxyType(
    {
        "11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区",
        "21": "辽宁省", "22": "吉林省", "23": "黑龙江省", "31": "上海市", "32": "江苏省",
        "33": "浙江省", "34": "安徽省", "35": "福建省", "36": "江西省", "37": "山东省",
        "41": "河南省", "42": "湖北省", "43": "湖南省", "44": "广东省", "45": "广西壮族自治区",
        "46": "海南省", "50": "重庆市", "51": "四川省", "52": "贵州省", "53": "云南省",
        "54": "西藏自治区", "61": "陕西省", "62": "甘肃省", "63": "青海省",
        "64": "宁夏回族自治区", "65": "新疆维吾尔自治区",
    }
)  # fmt: skip
_PREFECTURES: Mapping[str, str] = MappingProxyType(
    {
        "1301": "石家庄市", "2101": "沈阳市", "3201": "南京市", "3205": "苏州市",
        "3301": "杭州市", "3302": "宁波市", "3401": "合肥市", "3501": "福州市",
        "3701": "济南市", "3702": "青岛市", "4101": "郑州市", "4201": "武汉市",
        "4301": "长沙市", "4401": "广州市", "4403": "深圳市", "5101": "成都市",
        "5301": "昆明市", "6101": "西安市",
    }
)  # fmt: skip
_FALLBACK_PLACE = "本地统筹区"

_EMPLOYEE_SCHEMES = "城镇职工基本养老保险、城镇职工基本医疗保险、失业保险、工伤保险"
_RESIDENT_SCHEMES = "城乡居民基本养老保险、城乡居民基本医疗保险"
_CHILD_SCHEMES = "城乡居民基本医疗保险"
_RESIDENT_TIERS = ("每年200元", "每年300元", "每年500元", "每年1000元", "每年2000元")
_COMPANY_NAMES = ("宏达", "恒信", "瑞丰", "兴华", "鼎盛", "华泰", "永安", "启明")
_COMPANY_TRADES = ("机械制造", "商贸", "物流", "建筑工程", "食品", "信息技术", "纺织", "医药")

# Contribution history cannot start before these schemes existed.
_EMPLOYEE_SCHEME_START = (1992, 1)
_RESIDENT_SCHEME_START = (2011, 7)
_ADULT_AGE = 16
_PENSION_AGE = 60

_T = TypeVar("_T")


class _Draws:
    """A stream of numbers fixed by the ID number: SHA-256 of (purpose, ID number, draw index).

    Each purpose has its own stream, so adding a draw for one never shifts another's values.
    """

    def __init__(self, id_number: str, purpose: str = "records") -> None:
        self._key = f"sim-hub/{purpose}/v1\x00".encode("ascii") + id_number.encode("ascii")
        self._index = 0

    def below(self, bound: int) -> int:
        """A number in range(bound); the modulo bias of 64 random bits is negligible here."""
        self._index += 1
        digest = hashlib.sha256(self._key + self._index.to_bytes(4, "big")).digest()
        return int.from_bytes(digest[:8], "big") % bound

    def choice(self, options: Sequence[_T]) -> _T:
        return options[self.below(len(options))]


def birth_date(id_number: str) -> dt.date:
    """The birth date encoded in digits 7-14 of a validated ID number."""
    return dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def insured_place(id_number: str) -> str:
    """参保地 from the region digits: province, and prefecture when the short table knows it."""
    province = _PROVINCES.get(id_number[:2])
    if province is None:
        return _FALLBACK_PLACE
    return province + _PREFECTURES.get(id_number[:4], "")


def refusal_for(id_number: str, as_of: dt.date) -> str | None:
    """Why the hub refuses this (validated) person on this date, or None when it has a record."""
    listed = SPECIAL_PEOPLE.get(id_number)
    if listed is not None:
        return listed.refusal
    # A valid check digit with a birth date still to come names nobody the hub could know.
    if birth_date(id_number) > as_of:
        return NOT_ENROLLED
    return None


def enrollment_fields(id_number: str, as_of: dt.date) -> tuple[DocumentField, ...]:
    """The facts on a 社会保险参保证明 for a validated person, as of the given date.

    Contributions are counted to the end of the month before ``as_of``, as a real proof is; so
    the same person gets the same fields all month and a month more of contributions the next.
    """
    draws = _Draws(id_number)
    born = birth_date(id_number)
    last_month = _month_index(as_of.year, as_of.month) - 1
    age = _age(born, as_of)
    place = insured_place(id_number)
    employee = draws.below(2) == 0  # drawn for everyone, so minors do not shift later draws

    if age < _ADULT_AGE:
        schemes = _CHILD_SCHEMES
        first = _first_month(
            _month_index(born.year, born.month) + 1, _RESIDENT_SCHEME_START, last_month
        )
        months = _yearly_months(first, last_month, draws)
        last_field = DocumentField("缴费档次", "城乡居民医保 每年380元")
    elif employee:
        schemes = _EMPLOYEE_SCHEMES
        starts_at = _month_index(born.year + 18 + draws.below(10), 1 + draws.below(12))
        first = _first_month(starts_at, _EMPLOYEE_SCHEME_START, last_month)
        months = _monthly_months(first, _contribution_end(born, last_month), draws)
        if age >= _PENSION_AGE:
            last_field = DocumentField("待遇状态", "按月领取养老金")
        else:
            company = draws.choice(_COMPANY_NAMES) + draws.choice(_COMPANY_TRADES) + "有限公司"
            last_field = DocumentField("当前缴费单位", company)
    else:
        schemes = _RESIDENT_SCHEMES
        starts_at = _month_index(born.year + _ADULT_AGE, born.month) + draws.below(36)
        first = _first_month(starts_at, _RESIDENT_SCHEME_START, last_month)
        months = _yearly_months(first, _contribution_end(born, last_month), draws)
        if age >= _PENSION_AGE:
            last_field = DocumentField("待遇状态", "按月领取养老金")
        else:
            last_field = DocumentField("缴费档次", draws.choice(_RESIDENT_TIERS))

    return (
        DocumentField("参保险种", schemes),
        DocumentField("参保状态", "正常参保"),
        DocumentField("参保地", place),
        DocumentField("首次参保年月", _month_text(first)),
        DocumentField("累计缴费月数", str(months)),
        last_field,
        DocumentField("数据截至", _month_text(last_month)),
    )


# Postal addresses: county, town and village names made up from plain parts, so no address the
# simulator prints is anybody's real one.
_COUNTY_STEMS = ("青山", "临河", "清水", "安平", "永宁", "长乐", "石门", "白沙", "东阳", "河口")
_TOWN_STEMS = ("城关", "新桥", "马头", "柳林", "双河", "大坪", "龙泉", "高桥")
_VILLAGE_STEMS = ("张家", "李家", "王庄", "陈湾", "刘坪", "杨柳", "枫树", "石桥", "上塘", "下洋")
_NO_ADDRESS_ONE_IN = 8  # about one resident in eight has no address on record


def delivery_address(id_number: str) -> str | None:
    """The address on record for free mail delivery (免费寄递), or None for some residents.

    None for the listed special people (no usable record), for region digits the province table
    does not know, and for about one in eight others (nobody ever gave one), so the terminal's
    "no address: pick it up instead" path is reachable with an ordinary card.
    """
    if id_number in SPECIAL_PEOPLE:
        return None
    province = _PROVINCES.get(id_number[:2])
    if province is None:
        return None
    draws = _Draws(id_number, "address")
    if draws.below(_NO_ADDRESS_ONE_IN) == 0:
        return None
    prefecture = _PREFECTURES.get(id_number[:4], "")
    county = draws.choice(_COUNTY_STEMS) + draws.choice(("县", "县", "区"))
    town = draws.choice(_TOWN_STEMS) + draws.choice(("镇", "镇", "乡"))
    village = draws.choice(_VILLAGE_STEMS) + "村"
    group, number = 1 + draws.below(9), 1 + draws.below(60)
    return f"{province}{prefecture}{county}{town}{village}{group}组{number}号"


# Where the simulated hub receives cases: the made-up 示范县 of the catalogue's example centres
# (示范镇便民服务中心), standing at region code 330381 (in 浙江省温州市). Its own departments
# decide what is decided where a case is received.
HOME_REGION = "330381"
HOME_PLACE = "示范县"
# The authority's name after the place, per catalogue department. A province-level place (the
# prefecture is not in the short table) has a 厅 where a city has a 局.
_CITY_AUTHORITIES: Mapping[str, str] = MappingProxyType(
    {
        "human_resources": "人力资源和社会保障局", "healthcare_security": "医疗保障局",
        "civil_affairs": "民政局", "disabled_persons_federation": "残疾人联合会",
        "public_security": "公安局", "health": "卫生健康局", "rural_land": "农业农村局",
    }
)  # fmt: skip
_PROVINCE_AUTHORITIES: Mapping[str, str] = MappingProxyType(
    {"human_resources": "人力资源和社会保障厅", "public_security": "公安厅"}
)
_FALLBACK_AUTHORITY = "行政审批服务局"
# 异地通办 (收受分离): social insurance, medical insurance and household registration are decided
# where the resident is insured or registered, wherever they lodge the case; the hub takes that
# place from the ID number's region digits (a simplification: the ID's region is where the number
# was first issued). Everything else (assistance, disability, housing, births) is decided where
# the case is received.
_DECIDED_WHERE_REGISTERED = frozenset({"human_resources", "healthcare_security", "public_security"})


def processing_authority(department_id: str, id_number: str) -> str:
    """Who decides an application of this department for this resident, in Chinese.

    The receiving county's authority (示范县民政局), unless the department decides where the
    resident is registered and the ID's prefecture is another one the tables know: then that
    city's (杭州市医疗保障局) or, for a province-level place, the province's (北京市公安局,
    广东省人力资源和社会保障厅). Deterministic: the same item and person get the same authority.
    """
    city_suffix = _CITY_AUTHORITIES.get(department_id, _FALLBACK_AUTHORITY)
    if department_id in _DECIDED_WHERE_REGISTERED and id_number[:4] != HOME_REGION[:4]:
        prefecture = _PREFECTURES.get(id_number[:4])
        if prefecture is not None:
            return prefecture + city_suffix
        province = _PROVINCES.get(id_number[:2])
        if province is not None:
            if province.endswith("市"):  # 北京市, 上海市: a municipality's bureaus are 局
                return province + city_suffix
            return province + _PROVINCE_AUTHORITIES.get(department_id, city_suffix)
    return HOME_PLACE + city_suffix


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _month_index(year: int, month: int) -> int:
    """Months since year 0, so month arithmetic is integer arithmetic."""
    return year * 12 + (month - 1)


def _month_text(index: int) -> str:
    return f"{index // 12}年{index % 12 + 1:02d}月"


def _first_month(drawn: int, scheme_start: tuple[int, int], last_month: int) -> int:
    """Not before the scheme existed, and not after the month the record runs to."""
    return min(max(drawn, _month_index(*scheme_start)), last_month)


def _contribution_end(born: dt.date, last_month: int) -> int:
    """Contributions stop at the pension age, or run to last month for the working."""
    return min(last_month, _month_index(born.year + _PENSION_AGE, born.month))


def _monthly_months(first: int, end: int, draws: _Draws) -> int:
    """Employees pay monthly; a few gap months (job changes) come off the span.

    The gap is drawn once per person, not per span, so a record only ever grows, a month a month.
    """
    gap_months = draws.below(24)
    if end < first:
        return 0
    span = end - first + 1
    return span - min(gap_months, span - 1)


def _yearly_months(first: int, end: int, draws: _Draws) -> int:
    """Residents pay once a year: whole years of 12 months, minus the years they skipped."""
    skipped_years = draws.below(3)
    if end < first:
        return 0  # past the pension age when the scheme began: a pension without contributions
    years = (end - first) // 12 + 1
    return 12 * (years - min(skipped_years, years - 1))
