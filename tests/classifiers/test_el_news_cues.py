"""Greek bank news polarity: good and bad news about banks (written by the team, not taken from
any data set) get the rules' complaint or praise, with and without accents."""

import pytest

from classifiers.normalise import fold
from classifiers.rules import RuleClassifier


@pytest.fixture(scope="module")
def rules():
    return RuleClassifier()


GOOD_NEWS = [
    "Η τράπεζα βραβεύτηκε για τις ψηφιακές υπηρεσίες της",
    "δωρεά ιατρικού εξοπλισμού στο νοσοκομείο από την τράπεζα",
    "αναστολή δόσεων για τους πληγέντες από τις πλημμύρες",
    "μεταφορές χωρίς προμήθεια από το κινητό",
    "άτοκες δόσεις με την πιστωτική κάρτα",
    "νέες προσλήψεις και πρόγραμμα πρακτικής άσκησης για αποφοίτους",
    "η τράπεζα παγώνει τις δόσεις των δανείων για τρεις μήνες",
    "bank wins award for best digital services",
    "μείωση των κόκκινων δανείων κάτω από 5%",
    "με χαρά σας καλωσορίζουμε στο ανανεωμένο κατάστημα",
    "τέλος στις προμήθειες για αναλήψεις στα μικρά νησιά",
    "υπερκάλυψη τρεις φορές για το νέο ομόλογο",
    "η μετοχή έκλεισε με άνοδο 4%",
]
BAD_NEWS = [
    "νέο χαράτσι στις αναλήψεις από ΑΤΜ",
    "οι εισπρακτικές εταιρείες παίρνουν τηλέφωνο κάθε μέρα",
    "συνελήφθη πρώην στέλεχος τράπεζας για υπεξαίρεση",
    "εθελουσία έξοδος και κλείσιμο καταστημάτων",
    "ταλαιπωρία στα καταστήματα, το σύστημα έχει βλάβη",
    "τσουχτερές προμήθειες για κάθε συναλλαγή στο γκισέ",
    "στο αυτόφωρο ο διευθυντής του καταστήματος για εικονικά τιμολόγια",
    "νέα κύμα απολύσεων στις τράπεζες, ενώ μιλάνε για ανάπτυξη",
    "νέα αύξηση στις προμήθειες από την 1η του μήνα",
    "αδυναμία συναλλαγών για δεύτερη μέρα, το σύστημα κατέβηκε",
    "δυστυχώς χάθηκε πάλι η μεταφορά μου",
    "νέα στάση εργασίας στις τράπεζες την Πέμπτη",
    "πάτε καλά; τρία ευρώ για μια μεταφορά",
    "έκλεισε το κατάστημα του χωριού μας",
]


def _bare(text: str) -> str:
    """As many tweets come: lower case, no accents."""
    return fold(text)


@pytest.mark.parametrize("text", GOOD_NEWS + [_bare(t) for t in GOOD_NEWS])
def test_good_news_about_banks_is_praise(rules, text):
    labels = rules.classify(text, "el")
    assert labels.type == "praise", labels.reasons


@pytest.mark.parametrize("text", BAD_NEWS + [_bare(t) for t in BAD_NEWS])
def test_bad_news_about_banks_is_a_complaint(rules, text):
    labels = rules.classify(text, "el")
    assert labels.type == "complaint", labels.reasons


def test_no_fee_is_not_a_complaint_about_fees(rules):
    assert rules.classify("μηδενική προμήθεια για αναλήψεις από ΑΤΜ άλλων τραπεζών", "el").type == "praise"
    assert rules.classify("νέα προμήθεια για αναλήψεις από ΑΤΜ άλλων τραπεζών, αίσχος", "el").type == "complaint"
