// The credits page: balance, packs (each a PaymentIntent paid through Stripe.js), and the
// history of purchases, debits, settlements and refunds.
import { api } from "./api.js";

const $ = (sel) => document.querySelector(sel);
// Four decimals, or six when four would round a few GPU seconds away ($4.999926, not $5.0000).
const dollars = (n) => {
  const v = Math.abs(Number(n));
  const digits = Math.abs(Math.round(v * 1e4) - v * 1e4) > 1e-6 ? 6 : 4;
  return `${n < 0 ? "−" : ""}$${v.toFixed(digits)}`;
};
const LABELS = { purchase: "Purchase", debit: "Generation", settle: "Settled at cost", refund: "Refund" };
let info = null;

function row(e) {
  const tr = document.createElement("tr");
  tr.dataset.kind = e.kind;
  for (const v of [new Date(e.at).toLocaleString(), LABELS[e.kind] || e.kind, dollars(e.amount), e.job || e.paymentIntent]) {
    const td = document.createElement("td");
    td.textContent = v;
    tr.append(td);
  }
  return tr;
}

async function load() {
  info = await api("/credits");
  if (!info.enabled) {
    $("#credits-error").textContent = "Payments are not enabled on this studio.";
    return;
  }
  $("#balance").textContent = dollars(info.balance);
  $("#balance").dataset.balance = String(info.balance);
  $("#markup").textContent = `A generation costs its GPU time × ${info.markup}.`;
  $("#history").replaceChildren(...info.entries.map(row));
  $("#packs").replaceChildren(...info.packs.map((p) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.pack = String(p);
    b.textContent = `Buy $${p}`;
    b.addEventListener("click", () => buy(p));
    return b;
  }));
}

// Two ways to pay, by the studio's WARMPOOL_STUDIO_STRIPE_FLOW:
// - payment-element (real Stripe): the Payment Element, confirmed by Stripe.js;
// - card-token (localstripe, whose Stripe.js has no Payment Element): its Card Element makes
//   a token (the card goes to Stripe, never to the studio), the studio pays the intent with
//   it, and Stripe.js handles an authentication (3-D Secure) the card asks for.
async function buy(pack) {
  // A previous attempt's fields go at once: nobody types a card into a form about to vanish.
  const form = $("#pay-form");
  form.hidden = true;
  $("#payment-element").replaceChildren();
  $("#pay-status").textContent = "";
  const intent = await api("/credits/intents", { method: "POST", body: { pack } });
  const stripe = window.Stripe(info.publishableKey);
  const elements = info.flow === "card-token" ? stripe.elements() : stripe.elements({ clientSecret: intent.clientSecret });
  const element = elements.create(info.flow === "card-token" ? "card" : "payment");
  element.mount("#payment-element");
  form.dataset.pack = String(pack);
  form.hidden = false;
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    $("#pay").disabled = true;
    try {
      const error = info.flow === "card-token" ? await payWithToken(stripe, element, intent) : (await stripe.confirmPayment({ elements, redirect: "if_required" })).error;
      if (error) {
        $("#pay-status").textContent = error.message || String(error);
        return;
      }
      $("#pay-status").textContent = "Paid: the credit arrives in a moment.";
      form.hidden = true;
      element.destroy?.();
      await waitForCredit();
    } finally {
      $("#pay").disabled = false;
    }
  };
}

async function payWithToken(stripe, card, intent) {
  const made = await stripe.createToken(card);
  if (made.error) return made.error;
  let paid;
  try {
    paid = await api(`/credits/intents/${encodeURIComponent(intent.id)}/confirm`, { method: "POST", body: { token: made.token.id } });
  } catch (e) {
    return e;
  }
  if (paid.status === "requires_action") {
    const { error } = await stripe.confirmCardPayment(paid.clientSecret);
    return error || null;
  }
  return paid.status === "succeeded" || paid.status === "processing" ? null : { message: `payment ${paid.status}` };
}

// The credit comes with Stripe's webhook: reload until the balance moves (20 s at most).
async function waitForCredit() {
  const before = info.balance;
  for (let i = 0; i < 40 && info.balance === before; i += 1) {
    await new Promise((r) => setTimeout(r, 500));
    await load();
  }
}

load()
  .catch((e) => {
    $("#credits-error").textContent = e.message;
  })
  .finally(() => {
    $("#main").dataset.ready = "true";
  });
