// The credits page: balance, packs (each a PaymentIntent confirmed with Stripe's Payment
// Element), and the history of purchases, debits, settlements and refunds.
import { api } from "./api.js";

const $ = (sel) => document.querySelector(sel);
const dollars = (n) => `${n < 0 ? "−" : ""}$${Math.abs(Number(n)).toFixed(4)}`;
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

async function buy(pack) {
  $("#pay-status").textContent = "";
  const intent = await api("/credits/intents", { method: "POST", body: { pack } });
  const stripe = window.Stripe(info.publishableKey);
  const elements = stripe.elements({ clientSecret: intent.clientSecret });
  elements.create("payment").mount("#payment-element");
  const form = $("#pay-form");
  form.hidden = false;
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const { error } = await stripe.confirmPayment({ elements, redirect: "if_required" });
    if (error) {
      $("#pay-status").textContent = error.message;
      return;
    }
    $("#pay-status").textContent = "Paid: the credit arrives in a moment.";
    form.hidden = true;
    const before = info.balance;
    for (let i = 0; i < 20 && info.balance === before; i += 1) {
      await new Promise((r) => setTimeout(r, 1000));
      await load();
    }
  };
}

load()
  .catch((e) => {
    $("#credits-error").textContent = e.message;
  })
  .finally(() => {
    $("#main").dataset.ready = "true";
  });
