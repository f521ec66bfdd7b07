//! Name pools: company trade names, individual businesses, cooperatives, people,
//! universities and firms outside the city. Names never contain the list separators
//! of patent applicants (`;` `,` `、`), so one name is always one applicant.

use rand::Rng;

use crate::value::{R, pick};

/// Two of these make a trade name (字号).
const SYLLABLES: &[&str] = &[
    "恒", "泰", "鑫", "源", "华", "宏", "瑞", "丰", "晋", "同", "兴", "盛", "隆", "达", "昌", "安",
    "德", "福", "嘉", "金", "利", "龙", "茂", "明", "鹏", "荣", "润", "顺", "天", "通", "旺", "祥",
    "新", "信", "耀", "益", "永", "裕", "远", "正", "中", "卓", "博", "诚", "创", "东", "方", "广",
    "国", "海", "合", "和", "辉", "佳", "聚", "凯", "蓝", "力", "联", "美", "品", "奇", "启", "清",
    "尚", "胜", "晟", "拓", "万", "伟", "文", "星", "旭", "亚", "云", "泽", "智", "众", "志", "峰",
    "煜", "钧", "骏", "坤", "岳", "朔", "桓", "弘", "睿", "铭",
];

const COMPANY_PREFIX: &[&str] = &["大同市", "大同", "山西大同", "大同市", "山西"];

/// `(集团)` is stored with ASCII brackets (the normalized form); files may show it
/// full-width.
const COMPANY_SUFFIX: &[&str] = &[
    "有限公司",
    "有限公司",
    "有限责任公司",
    "股份有限公司",
    "(集团)有限公司",
    "科技有限公司",
];

/// Common surnames.
pub const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗", "梁", "宋", "郑", "谢", "韩", "唐", "冯", "于", "董", "程", "曹", "袁",
    "邓", "许", "傅", "沈", "曾", "彭", "吕", "苏", "卢", "蒋", "蔡", "贾", "丁", "魏", "薛", "叶",
    "阎", "任",
];

const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "桂英", "建华", "志强", "海燕", "晓东", "文", "斌", "鹏", "宇",
    "建国", "玉兰", "永平", "瑞", "红梅",
];

const SHOP_GOODS: &[&str] = &[
    "五金",
    "副食",
    "建材",
    "日杂",
    "烟酒",
    "服装",
    "家电",
    "汽修",
    "餐饮",
    "小吃",
    "面馆",
    "粮油",
    "果蔬",
    "调料",
    "茶叶",
    "电器维修",
    "彩钢",
    "门窗",
    "装饰",
    "百货",
];

const SHOP_KIND: &[&str] = &["店", "商店", "经销部", "门市部", "商行", "部"];

const VILLAGE_SYL: &[&str] = &[
    "西", "东", "南", "北", "上", "下", "大", "小", "新", "王", "李", "马", "杨", "柳", "白", "红",
    "石", "沙", "河", "堡", "庄", "坪", "峪", "窑", "泉",
];

/// Universities that file patents with Datong firms; they never link to the registry.
pub const UNIVERSITIES: &[&str] = &[
    "太原理工大学",
    "山西大学",
    "中北大学",
    "山西大同大学",
    "中国矿业大学",
    "北京科技大学",
    "清华大学",
    "山西农业大学",
];

const OUTSIDE_CITIES: &[&str] = &["太原", "北京", "天津", "石家庄", "呼和浩特", "西安"];

/// A short word for an industry class, from its GB/T 4754 name: the first part before
/// any `、`, `，` or bracket, without a leading 其他.
pub fn industry_word(class_name: &str) -> String {
    let cut = class_name
        .split(['、', '，', '（', '(', ' ', ','])
        .next()
        .unwrap_or(class_name);
    let cut = cut.strip_prefix("其他").unwrap_or(cut);
    let cut = cut.strip_suffix("制造").unwrap_or(cut);
    if cut.chars().count() < 2 {
        "实业".to_string()
    } else {
        cut.chars().take(10).collect()
    }
}

fn trade_name(rng: &mut R, attempt: u32) -> String {
    let mut s = format!("{}{}", pick(rng, SYLLABLES), pick(rng, SYLLABLES));
    // Later attempts get a third syllable, so the space of names never runs out.
    if attempt > 4 {
        s.push_str(pick::<&str>(rng, SYLLABLES));
    }
    s
}

/// A company name such as `大同市恒泰石墨及碳素制品有限公司` (canonical form).
pub fn company(rng: &mut R, class_name: &str, attempt: u32) -> String {
    format!(
        "{}{}{}{}",
        pick(rng, COMPANY_PREFIX),
        trade_name(rng, attempt),
        industry_word(class_name),
        pick(rng, COMPANY_SUFFIX)
    )
}

/// An individual business (个体工商户) such as `平城区王记五金店`.
pub fn individual(rng: &mut R, county_name: &str, attempt: u32) -> String {
    let county: String = county_name.chars().take(3).collect();
    let extra = if attempt > 3 {
        pick(rng, SYLLABLES).to_string()
    } else {
        String::new()
    };
    format!(
        "{county}{}记{extra}{}{}",
        pick(rng, SURNAMES),
        pick(rng, SHOP_GOODS),
        pick(rng, SHOP_KIND)
    )
}

/// A farmers' cooperative such as `云州区西坪村黄花种植专业合作社`.
pub fn cooperative(rng: &mut R, county_name: &str, class_name: &str, attempt: u32) -> String {
    let county: String = county_name.chars().take(3).collect();
    let mut village = format!("{}{}", pick(rng, VILLAGE_SYL), pick(rng, VILLAGE_SYL));
    if attempt > 3 {
        village.push_str(pick::<&str>(rng, VILLAGE_SYL));
    }
    format!("{county}{village}村{}专业合作社", industry_word(class_name))
}

/// A person's name.
pub fn person(rng: &mut R) -> String {
    format!("{}{}", pick(rng, SURNAMES), pick(rng, GIVEN))
}

/// A firm outside Datong (never in the registry: registry names never start with
/// another city's name).
pub fn outside_firm(rng: &mut R) -> String {
    format!(
        "{}{}{}",
        pick(rng, OUTSIDE_CITIES),
        trade_name(rng, 0),
        pick(
            rng,
            &[
                "科技有限公司",
                "机械设备有限公司",
                "新材料股份有限公司",
                "研究院有限公司"
            ]
        )
    )
}

/// A firm registered in another place (`杭州恒泰新材料股份有限公司`); with an
/// industry class name its trade, else a generic one.
pub fn firm_at(rng: &mut R, place: &str, class_name: &str) -> String {
    // A class name cut short (信息处理和存储支持服) reads badly: a generic trade then.
    let word = industry_word(class_name);
    let trade = if class_name.is_empty() || word.chars().count() >= 10 {
        pick(rng, &["新材料", "实业", "投资", "科技", "产业发展"]).to_string()
    } else {
        word
    };
    format!(
        "{place}{}{trade}{}",
        trade_name(rng, 0),
        pick(rng, &["有限公司", "股份有限公司", "集团有限公司"])
    )
}

/// A mobile number, for columns ingestion ignores.
pub fn phone(rng: &mut R) -> String {
    format!("13{:09}", rng.random_range(0..1_000_000_000u32))
}
