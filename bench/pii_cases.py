"""Builds the labelled PII test set (tests/data/pii_cases.jsonl): English and Chinese customer
messages with personal data of every kind Persona redacts, and hard negatives that look like it
(order ids, prices, dates, times, tracking numbers, barcodes, versions, invalid ids and cards).
Each line: {"text", "pii": [{"kind", "value"}]}. Seeded: the same file every time.
Usage: pii_cases.py [OUT]"""
import json
import random
import sys

rng = random.Random(20261130)


def luhn_complete(body):
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def card():
    prefix = rng.choice(["4", "51", "52", "55", "62", "37", "6011"])
    length = 15 if prefix == "37" else rng.choice([16, 16, 19])
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    number = luhn_complete(body)
    if rng.random() < 0.5 and length == 16:
        number = " ".join(number[i:i + 4] for i in range(0, 16, 4))
    return number


def cn_id(valid=True):
    area = rng.choice(["110105", "310104", "440305", "510107", "330106"])
    birth = f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    seq = f"{rng.randint(0, 999):03d}"
    body = area + birth + seq
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]
    if not valid:
        check = rng.choice([c for c in "0123456789" if c != check])
    return body + check


def phone():
    kind = rng.random()
    if kind < 0.5:
        n = rng.choice(["13", "15", "18", "19", "17"]) + "".join(rng.choice("0123456789") for _ in range(9))
        return rng.choice([n, "+86 " + n, n[:3] + " " + n[3:7] + " " + n[7:]])
    if kind < 0.75:
        return f"+44 20 {rng.randint(7000, 7999)} {rng.randint(1000, 9999)}"
    return f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}"


def email():
    user = rng.choice(["li.wei", "zhang_san", "anna.smith", "bob", "wang.fang88", "j.doe+shop"])
    domain = rng.choice(["example.com", "qq.com", "163.com", "mail.example.co.uk", "gmail.com"])
    return f"{user}@{domain}"


def ip():
    if rng.random() < 0.8:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return "2001:db8::" + ":".join(f"{rng.randint(0, 65535):x}" for _ in range(2))


KINDS = {"email": email, "phone": phone, "cn_id": cn_id, "bank_card": card, "ip": ip}
TEMPLATES = {
    "email": ["Please send the invoice to {}", "我的邮箱是{}，请发给我", "contact me at {} about the refund"],
    "phone": ["Call me on {} after 6pm", "我的手机号{}，快递到了请打电话", "my number is {}"],
    "cn_id": ["实名认证身份证号：{}", "ID number {} for customs clearance", "身份证{}已上传"],
    "bank_card": ["Refund to card {} please", "退款请打到卡号{}", "I paid with {} yesterday"],
    "ip": ["Login from {} was not me", "异常登录IP：{}", "the app connects from {}"],
}
NEGATIVES = [
    lambda: f"Where is order ORD-2025-{rng.randint(0, 999999):06d}?",
    lambda: f"订单ORD-2025-{rng.choice(['13', '15', '18'])}{rng.randint(100000000, 999999999)}还没发货",
    lambda: f"It costs ¥{rng.randint(10, 9999)}.{rng.randint(0, 99):02d}, too expensive",
    lambda: f"Delivered on 2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} at {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
    lambda: f"快递单号{rng.randint(10 ** 11, 10 ** 12 - 1)}",
    lambda: f"barcode 69{rng.randint(10 ** 10, 10 ** 11 - 1)}",
    lambda: f"app version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}",
    lambda: f"买了{rng.randint(2, 9)}件，共{rng.randint(100, 999)}元",
    lambda: f"身份证号{cn_id(valid=False)}",              # wrong check digit
    lambda: f"card 4{''.join(rng.choice('0123456789') for _ in range(14))}{rng.choice('0123456789')}x",  # not a number run
    lambda: f"session S{rng.randint(10 ** 7, 10 ** 8 - 1)} expired",
    lambda: f"room {rng.randint(100, 2999)}, building {rng.randint(1, 30)}",
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/pii_cases.jsonl"
    cases = []
    for kind, make in KINDS.items():
        for _ in range(40):
            value = make()
            cases.append({"text": rng.choice(TEMPLATES[kind]).format(value), "pii": [{"kind": kind, "value": value}]})
    for _ in range(20):  # two kinds in one message
        a, b = rng.sample(list(KINDS), 2)
        va, vb = KINDS[a](), KINDS[b]()
        cases.append({"text": f"{rng.choice(TEMPLATES[a]).format(va)}; also {vb}", "pii": [{"kind": a, "value": va}, {"kind": b, "value": vb}]})
    for _ in range(160):
        neg = rng.choice(NEGATIVES)()
        if neg.startswith("card 4"):  # an invalid Luhn number, written plainly
            digits = neg[5:-1]
            digits = digits[:-1] + str((int(luhn_complete(digits[:-1])[-1]) + 1) % 10)
            neg = f"card {digits}"
        cases.append({"text": neg, "pii": []})
    rng.shuffle(cases)
    with open(out, "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    print(f"{len(cases)} cases -> {out}")


if __name__ == "__main__":
    main()
