//! One or more Korean questions per KLUE-RE relation, about the subject.
//!
//! A relation holds between a subject and an object; its question asks for
//! the object, so the reader's answer span can be compared with the object
//! span. The wording depends on the subject's entity type where KLUE allows
//! both (a person's or an organisation's alternate names), and particles
//! follow the subject's last sound ([`crate::josa`]).

use crate::josa::{attach, Particle};

/// KLUE-RE's label for "none of the 29 relations holds".
pub const NO_RELATION: &str = "no_relation";

/// The 29 KLUE-RE relations, in `klue-re-relations.json` order.
pub const RELATIONS: [&str; 29] = [
    "org:dissolved",
    "org:founded",
    "org:place_of_headquarters",
    "org:alternate_names",
    "org:member_of",
    "org:members",
    "org:political/religious_affiliation",
    "org:product",
    "org:founded_by",
    "org:top_members/employees",
    "org:number_of_employees/members",
    "per:date_of_birth",
    "per:date_of_death",
    "per:place_of_birth",
    "per:place_of_death",
    "per:place_of_residence",
    "per:origin",
    "per:employee_of",
    "per:schools_attended",
    "per:alternate_names",
    "per:parents",
    "per:children",
    "per:siblings",
    "per:spouse",
    "per:other_family",
    "per:colleagues",
    "per:product",
    "per:religion",
    "per:title",
];

/// The kind of entity a question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectType {
    Person,
    Organization,
    /// Any other KLUE entity type (LOC, DAT, POH, NOH), rare as a subject.
    Other,
}

impl SubjectType {
    /// From a KLUE entity type (`PER`, `ORG`, …).
    pub fn from_klue(entity_type: &str) -> Self {
        match entity_type {
            "PER" => SubjectType::Person,
            "ORG" => SubjectType::Organization,
            _ => SubjectType::Other,
        }
    }
}

/// A relation label known to the templates; serialised as its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Relation(&'static str);

impl serde::Serialize for Relation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl Relation {
    /// The relation named `label`, or `None` for `no_relation` and unknown labels.
    pub fn parse(label: &str) -> Option<Self> {
        RELATIONS
            .iter()
            .find(|&&r| r == label)
            .map(|&r| Relation(r))
    }

    /// All 29 relations.
    pub fn all() -> impl Iterator<Item = Relation> {
        RELATIONS.iter().map(|&r| Relation(r))
    }

    pub fn label(self) -> &'static str {
        self.0
    }

    /// Position in [`RELATIONS`].
    pub fn index(self) -> usize {
        RELATIONS.iter().position(|&r| r == self.0).unwrap_or(0)
    }

    /// The relations asked about a subject of type `subject_type`: the
    /// `per:` ones for a person, the `org:` ones for an organisation, all 29
    /// for any other type (as the training-data export asks them).
    pub fn for_subject(subject_type: SubjectType) -> impl Iterator<Item = Relation> {
        Relation::all()
            .filter(move |r| subject_type == SubjectType::Other || r.subject_type() == subject_type)
    }

    /// The subject type the relation is defined for (`per:` or `org:`).
    pub fn subject_type(self) -> SubjectType {
        if self.0.starts_with("per:") {
            SubjectType::Person
        } else {
            SubjectType::Organization
        }
    }
}

/// The questions for `relation` about `subject` of type `subject_type`,
/// the preferred one first. Never empty.
pub fn questions(relation: Relation, subject: &str, subject_type: SubjectType) -> Vec<String> {
    let s = subject.trim();
    let topic = attach(s, Particle::Topic);
    let subj = attach(s, Particle::Subject);
    let obj = attach(s, Particle::Object);
    // "who" for people, "what" for anything else, where KLUE allows both.
    let who_or_what = match subject_type {
        SubjectType::Person => "누구",
        _ => "무엇",
    };
    let q: Vec<String> = match relation.label() {
        "org:dissolved" => vec![
            format!("{topic} 언제 해산되었는가?"),
            format!("{topic} 언제 없어졌는가?"),
        ],
        "org:founded" => vec![
            format!("{topic} 언제 설립되었는가?"),
            format!("{topic} 언제 창립되었는가?"),
        ],
        "org:place_of_headquarters" => vec![
            format!("{s}의 본부는 어디에 있는가?"),
            format!("{s}의 본사는 어디인가?"),
        ],
        "org:alternate_names" | "per:alternate_names" => vec![
            format!("{s}의 다른 이름은 무엇인가?"),
            format!("{topic} 달리 무엇이라고 불리는가?"),
        ],
        "org:member_of" => vec![
            format!("{subj} 속한 조직은 무엇인가?"),
            format!("{topic} 어디의 회원인가?"),
        ],
        "org:members" => vec![
            format!("{s}에 속한 구성원은 무엇인가?"),
            format!("{s}의 회원은 누구인가?"),
        ],
        "org:political/religious_affiliation" => vec![
            format!("{s}의 정치 성향이나 종교는 무엇인가?"),
            format!("{topic} 어떤 정당이나 종교와 관련되어 있는가?"),
        ],
        "org:product" => vec![
            format!("{subj} 만든 제품은 무엇인가?"),
            format!("{s}의 제품이나 서비스는 무엇인가?"),
        ],
        "org:founded_by" => vec![
            format!("{obj} 설립한 사람은 누구인가?"),
            format!("{s}의 창립자는 누구인가?"),
        ],
        "org:top_members/employees" => vec![
            format!("{s}의 대표나 주요 인물은 누구인가?"),
            format!("{s}의 회장은 누구인가?"),
        ],
        "org:number_of_employees/members" => vec![
            format!("{s}의 구성원 수는 얼마인가?"),
            format!("{s}의 직원은 몇 명인가?"),
        ],
        "per:date_of_birth" => vec![
            format!("{topic} 언제 태어났는가?"),
            format!("{s}의 생년월일은 언제인가?"),
        ],
        "per:date_of_death" => vec![
            format!("{topic} 언제 사망했는가?"),
            format!("{topic} 언제 죽었는가?"),
        ],
        "per:place_of_birth" => vec![
            format!("{topic} 어디에서 태어났는가?"),
            format!("{s}의 출생지는 어디인가?"),
        ],
        "per:place_of_death" => vec![
            format!("{topic} 어디에서 사망했는가?"),
            format!("{topic} 어디에서 죽었는가?"),
        ],
        "per:place_of_residence" => vec![
            format!("{topic} 어디에 사는가?"),
            format!("{s}의 거주지는 어디인가?"),
        ],
        "per:origin" => vec![
            format!("{topic} 어디 출신인가?"),
            format!("{s}의 국적은 무엇인가?"),
        ],
        "per:employee_of" => vec![
            format!("{subj} 소속된 곳은 어디인가?"),
            format!("{topic} 어디에서 일하는가?"),
        ],
        "per:schools_attended" => vec![
            format!("{subj} 다닌 학교는 어디인가?"),
            format!("{topic} 어느 학교를 졸업했는가?"),
        ],
        "per:parents" => vec![
            format!("{s}의 부모는 누구인가?"),
            format!("{s}의 아버지나 어머니는 누구인가?"),
        ],
        "per:children" => vec![
            format!("{s}의 자녀는 누구인가?"),
            format!("{s}의 아들이나 딸은 누구인가?"),
        ],
        "per:siblings" => vec![
            format!("{s}의 형제자매는 누구인가?"),
            format!("{s}의 형제는 누구인가?"),
        ],
        "per:spouse" => vec![
            format!("{s}의 배우자는 누구인가?"),
            format!("{s}{} 결혼한 사람은 누구인가?", Particle::With.after(s)),
        ],
        "per:other_family" => vec![
            format!("{s}의 친척은 누구인가?"),
            format!("{s}의 가족은 누구인가?"),
        ],
        "per:colleagues" => vec![
            format!("{s}의 동료는 누구인가?"),
            format!(
                "{s}{} 함께 활동한 사람은 누구인가?",
                Particle::With.after(s)
            ),
        ],
        "per:product" => vec![
            format!("{subj} 만든 작품은 무엇인가?"),
            format!("{s}의 대표작은 무엇인가?"),
        ],
        "per:religion" => vec![
            format!("{s}의 종교는 무엇인가?"),
            format!("{topic} 어떤 종교를 믿는가?"),
        ],
        "per:title" => vec![
            format!("{s}의 직위나 직업은 무엇인가?"),
            format!("{topic} {who_or_what}인가?"),
        ],
        other => vec![format!("{s}의 {other}{who_or_what}인가?")],
    };
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_relation_has_distinct_questions_for_both_subject_types() {
        assert_eq!(Relation::all().count(), 29);
        for relation in Relation::all() {
            for (subject, ty) in [
                ("이순신", SubjectType::Person),
                ("삼성전자", SubjectType::Organization),
            ] {
                let qs = questions(relation, subject, ty);
                assert!(!qs.is_empty(), "{}", relation.label());
                for q in &qs {
                    assert!(q.contains(subject), "{q}");
                    assert!(q.ends_with('?'), "{q}");
                    // The fallback arm would leak the label into the question.
                    assert!(
                        !q.contains(':'),
                        "no template for {}: {q}",
                        relation.label()
                    );
                }
            }
        }
        // The preferred questions tell every relation apart.
        let firsts: std::collections::HashSet<String> = Relation::all()
            .filter(|r| !r.label().ends_with("alternate_names"))
            .map(|r| questions(r, "김구", SubjectType::Person).remove(0))
            .collect();
        assert_eq!(firsts.len(), 27);
    }

    #[test]
    fn particles_follow_the_subject() {
        let founded = Relation::parse("org:founded").unwrap();
        assert_eq!(
            questions(founded, "삼성전자", SubjectType::Organization)[0],
            "삼성전자는 언제 설립되었는가?"
        );
        assert_eq!(
            questions(founded, "대한항공", SubjectType::Organization)[0],
            "대한항공은 언제 설립되었는가?"
        );
        let founder = Relation::parse("org:founded_by").unwrap();
        assert_eq!(
            questions(founder, "현대", SubjectType::Organization)[0],
            "현대를 설립한 사람은 누구인가?"
        );
        let spouse = Relation::parse("per:spouse").unwrap();
        assert_eq!(
            questions(spouse, "이순신", SubjectType::Person)[1],
            "이순신과 결혼한 사람은 누구인가?"
        );
    }

    #[test]
    fn subject_type_changes_the_wording_where_klue_allows_both() {
        let title = Relation::parse("per:title").unwrap();
        assert_eq!(
            questions(title, "홍길동", SubjectType::Person)[1],
            "홍길동은 누구인가?"
        );
        assert_eq!(
            questions(title, "KBS", SubjectType::Organization)[1],
            "KBS는 무엇인가?"
        );
        assert_eq!(Relation::parse("no_relation"), None);
        assert_eq!(
            Relation::parse("per:spouse").unwrap().subject_type(),
            SubjectType::Person
        );
        assert_eq!(SubjectType::from_klue("ORG"), SubjectType::Organization);
    }
}
