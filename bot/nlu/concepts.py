"""Shop concepts: the vocabulary of an online shop's FAQ, in each shipped language.

The dialogue-act cues (``bot.nlu.cues``) link "Servus" to "hello"; these link "przesyłka",
"Versandkosten" and "postaköltség" to the concepts ``ship`` and ``cost``. A text gets a cue token
per concept its words show (``cue_ship``, ``cue_cost``), in every language the same token, so a
language's classifier learns from the other languages' examples of an intent at the level of
concepts, not only of shared names and cognates. The classifier learns from the shop's own
examples which intents each concept goes with: a shop that sells shoes or software gets the
concepts it uses (shipping, returns, payment, accounts, ...) and the rest stay silent.

Entries as in ``bot.nlu.cues`` (folded: lower case, no accents; ``word*`` a prefix, ``two_words``
a pair in a row), plus ``*part*`` for a word containing ``part`` (German and Swedish compounds:
"Versandkosten", "fraktkostnad") and ``*end`` for a word ending in it.
"""

from __future__ import annotations

SHOP: dict[str, dict[str, str]] = {
    "en": {
        "ship": "ship shipping shipped ships shipment* deliver* post postage parcel* package* "
        "courier* dispatch* send sends",
        "abroad": "abroad international* worldwide overseas country countries outside europe* "
        "eu uk usa us america* canada australia norway switzerland swiss britain england "
        "ireland germany austria france italy spain poland hungary sweden denmark netherlands",
        "cost": "cost* price* pricing fee fees charge* expensive cheap free euro* eur how_much "
        "pay_extra extra",
        "time": "how_long long days day weeks week fast quick* soon when time arrive* arrival "
        "eta business_days working_days today tomorrow take takes",
        "return": "return* refund* send_back money_back exchange* withdraw* reimburs* unwanted",
        "warranty": "warrant* guarantee* defect* broken faulty repair* stopped_working",
        "pay": "pay paying paid payment* card cards credit debit visa mastercard amex paypal "
        "klarna apple_pay google_pay bank_transfer transfer cash checkout",
        "instalment": "chunks instalment* installment* monthly finance* financing split pay_later spread",
        "invoice": "invoice* vat tax receipt* bill billing company business* b2b",
        "discount": "discount* code codes coupon* promo* sale offer* deal deals newsletter* "
        "welcome first_order percent",
        "gift": "gift* present* voucher* birthday",
        "track": "track* tracking status follow",
        "cancel": "cancel* undo revoke mistake* mistaken* accident* wrong_order",
        "pickup": "pick_up pickup collect* store stores showroom* in_person visit* location* "
        "physical try_out",
        "parts": "spare* part parts replacement* accessor* gasket* seal seals filter* component*",
        "hours": "working_hours business_hours office_hours what_time times night evening* open opening hour hours available reachable weekend* saturday* sunday* "
        "monday* friday* o_clock clock am pm",
        "privacy": "privacy private data personal gdpr delete* deletion erase* cookie* server* "
        "stored",
        "subscription": "subscri* recurring regular* every",
        "compare": "compar* difference* differ* versus vs better which",
        "electric": "volt* plug* socket* outlet* power adapter*",
        "capacity": "reservoir* container* fits fit capacit* litre* liter* volume size dimension* tank hold holds ml",
        "cheaper": "cheaper lower price_match match beat elsewhere competitor* price_guarantee "
        "price_protection lowest_price best_price",
        "clean": "clean* descal* limescale scale maintenance maintain*",
        "account": "account* login log_in password* sign_in register*",
        "stock": "stock availability sold_out restock* back_in",
    },
    "de": {
        "ship": "versand* *versand* versend* verschick* liefer* *liefer* zustell* paket* "
        "sendung* post porto* kurier* schick*",
        "abroad": "ausland* international* weltweit land lander landern europa eu schweiz "
        "osterreich norweg* grossbritannien england uk usa amerika kanada australien "
        "frankreich italien spanien niederland* polen ungarn schweden danemark",
        "cost": "kost* *kost* preis* *preis* gebuhr* *gebuhr* teuer billig* gratis "
        "kostenlos* umsonst euro eur wie_viel wieviel aufpreis",
        "time": "wie_lange lange dauer* dauert tage tag tagen woche* schnell* bald wann zeit "
        "*zeit ankomm* ankunft heute morgen werktag*",
        "return": "*rucksend* zurucksch* zuruckgeb* *ruckgabe* retour* *erstatt* umtausch* widerruf* "
        "geld_zuruck",
        "warranty": "garantie* gewahrleist* defekt* kaputt *reparatur* repari*",
        "pay": "zahl* bezahl* *zahlung* karte* kreditkart* visa mastercard paypal klarna "
        "apple_pay google_pay uberweis* *uberweisung bar vorkasse",
        "instalment": "rate raten ratenzahl* ratenkauf monatlich* finanzier* abzahl* monatsrate*",
        "invoice": "rechnung* *rechnung ust* mwst* steuer* umsatzsteuer* firma firmen* gewerb* "
        "unternehm* beleg* quittung*",
        "discount": "reduziert* rabatt* *rabatt* gutscheincode* code codes coupon* aktion* angebot* "
        "newsletter* willkommen* erstbestell* neukund* prozent",
        "gift": "geschenk* *gutschein* geburtstag*",
        "track": "sendungsverfolg* verfolg* *tracking* status wo_bleibt unterwegs",
        "cancel": "storn* abbrech* abbestell* widerruf* ruckgang* versehen* aus_versehen "
        "falsch_bestellt",
        "pickup": "abhol* abzuhol* laden* geschaft* filiale* showroom* ausstellung* vor_ort "
        "personlich* besuch* anschau* ausprobier*",
        "parts": "ersatzteil* *ersatz* teil teile dichtung* *dichtung* zubehor* filter*",
        "hours": "arbeitet arbeiten uhrzeit* nachts abends morgens nacht offnungszeit* geoffnet offen erreichbar* uhr wochenende* samstag* sonntag* "
        "montag* freitag* *zeiten",
        "privacy": "datenschutz* dsgvo daten *daten* personenbezog* losch* server* "
        "gespeichert* speicher* cookie*",
        "subscription": "abo abos abonn* regelmassig* *abo wochentlich*",
        "compare": "vergleich* unterschied* unterscheid* versus vs besser welche*",
        "electric": "volt *spannung* stecker* steckdose* *stecker* strom* adapter*",
        "capacity": "behalter* *behalter* fassungsvermogen liter* *tank* volumen grosse gross",
        "cheaper": "gunstiger billiger *preisgarantie* preisanpass* woanders anderswo konkurren* "
        "bestpreis* tiefpreis* gunstigst* billigst*",
        "clean": "reinig* entkalk* *kalk* wartung* pflege* putzen",
        "account": "konto* kundenkonto* login anmeld* passwort* registrier*",
        "stock": "lager* lieferbar verfugbar* ausverkauft vorratig",
    },
    "hu": {
        "ship": "szallit* kiszallit* kuld* elkuld* kikuld* csomag* futar* posta* feladas* feladt*",
        "abroad": "kulfold* nemzetkoz* orszag* europ* eu uk usa amerik* kanad* norveg* svajc* "
        "angli* nagy_britann* nagybritann* nemet* ausztri* franci* lengyel* sved* "
        "magyarorszag*",
        "cost": "ar ara arat arak arban koltseg* *koltseg* mennyibe kerul* dij* *dij* ingyen* "
        "drag* olcs* euro eur forint* ft",
        "time": "mennyi_ido meddig mikor nap napot napon napig het hetet gyors* hamar ido "
        "idot idobe ideer* erkez* megerkez* ma holnap munkanap*",
        "return": "visszakuld* visszaad* visszaterit* visszafizet* visszakap* visszavesz* elallas* elall* "
        "csere* kicserel*",
        "warranty": "garancia* jotall* szavatoss* hibas* elromlot* javit* serul*",
        "pay": "fizet* kartya* bankkartya* visa mastercard paypal klarna apple_pay google_pay "
        "atutal* keszpenz* utanvet*",
        "instalment": "reszlet* havi havonta reszletfizet* hitel* finansz* szetoszt*",
        "invoice": "szamla* ado adot adoszam* afa* ceg ceges cegnek cegem vallalkoz* cegnev* "
        "nyugta*",
        "discount": "kedvezmeny* kupon* kod kodot kuponkod* akcio* learaz* hirlevel* szazalek*",
        "gift": "ajandek* utalvany* ajandekkartya* szuletesnap*",
        "track": "nyomon* nyomkov* kovet* statusz* hol_tart merre_jar csomagkovet*",
        "cancel": "lemond* visszamond* torol* sztorn* visszavon* veletlen* tevedes*",
        "pickup": "atvet* atvenn* szemelyesen bemutato* uzlet* bolt* kiprobal* megnez* showroom*",
        "parts": "alkatresz* potalkatresz* tomites* tartozek* szuro* csere*",
        "hours": "dolgoz* kor reggel este ejjel* ejszaka* hany_orakor nyitvatart* nyitva elerhet* ora orakor orara hetvege* szombat* vasarnap* "
        "hetfo* pentek* munkaido*",
        "privacy": "adatvedel* adat* gdpr torl* szerver* tarol* suti* szemelyes_adat*",
        "subscription": "elofizet* rendszeres* hetente kethetente havonta",
        "compare": "osszehasonlit* kulonbseg* kulonb* jobb melyik versus vs",
        "electric": "feszultseg* volt voltos* dugo* villasdugo* konnektor* aljzat* aram* "
        "adapter* atalakit*",
        "capacity": "urtartalom* liter* literes tartaly* mekkora* meret*",
        "cheaper": "olcsobb* arcsokken* csokken* argarancia* mashol konkurenc* legolcsobb* "
        "legalacsonyabb*",
        "clean": "tisztit* vizko* vizkotelenit* karbantart*",
        "account": "fiok* bejelentkez* jelszo* regisztr*",
        "stock": "raktar* kaphato* elfogyott keszlet*",
    },
    "sv": {
        "ship": "frakt* *frakt* leverer* leverans* *leverans* skick* paket* post* bud "
        "budfirma* sand*",
        "abroad": "utomlands utland* internationell* varlden* land lander landet europa eu uk "
        "usa amerika kanada norge schweiz storbritannien england tyskland danmark finland "
        "polen ungern osterrike frankrike",
        "cost": "kost* *kostnad* pris* *pris* avgift* *avgift* dyr* billig* gratis "
        "kostnadsfri* fri hur_mycket euro eur kr kronor sek",
        "time": "hur_lange lange tid *tid dagar dag dagen vecka* veckor snabb* snart nar "
        "framme idag imorgon arbetsdag*",
        "return": "retur* *retur* returnera* skicka_tillbaka tillbaka aterbetal* "
        "pengarna_tillbaka angerratt* byta* byte",
        "warranty": "garanti* reklamation* reklamera* trasig* defekt* fel felaktig* "
        "reparation* reparera*",
        "pay": "swish* visakort betal* kort kortet kreditkort* visa mastercard paypal klarna swish apple_pay "
        "google_pay bankoverforing* overforing*",
        "instalment": "omgang* delbetal* avbetal* manad* manadsvis finansier* dela_upp",
        "invoice": "faktura* moms* momsnummer* momsregistrer* foretag* organisationsnummer* "
        "orgnr kvitto*",
        "discount": "rea rabatt* *rabatt* rabattkod* kod koden kupong* erbjudande* kampanj* "
        "nyhetsbrev* valkomst* forsta_kop forsta_bestallning procent*",
        "gift": "present* presentkort* *presentkort* gavokort* gava fodelsedag*",
        "track": "spara sparning* *sparning* status* kolli*",
        "cancel": "avbest* avbryt* annuller* angra* makulera* misstag*",
        "pickup": "hamt* *hamtning* butik* showroom* utstallning* pa_plats personligen besok* "
        "prova* titta*",
        "parts": "reservdel* *reservdel* del delar packning* tillbehor* filter*",
        "hours": "jobbar arbetar vilka_tider kvall* natt* natten oppettid* oppet oppna* nas tillganglig* klockan helg* helgen lordag* "
        "sondag* mandag* fredag*",
        "privacy": "integritet* dataskydd* gdpr personuppgift* uppgifter data radera* ta_bort "
        "server* lagra* cookie* kakor",
        "subscription": "prenumer* abonnemang* regelbund* varannan var_fjarde",
        "compare": "jamfor* skillnad* skiljer* versus vs battre vilken vilket",
        "electric": "volt spanning* stickpropp* kontakt* uttag* strom* adapter*",
        "capacity": "behallare* far_plats kapacitet* liter* volym* tank* *tank* rymmer ryms storlek*",
        "cheaper": "mellanskillnad* billigare lagre prisgaranti* prismatch* annanstans konkurrent* "
        "billigast* lagsta_pris",
        "clean": "rengor* avkalk* *kalk* underhall* diska",
        "account": "konto* logga* inlogg* losenord* registrer*",
        "stock": "lager lagret restnoterad* slutsald*",
    },
    "pl": {
        "ship": "wysl* wysyl* przesyl* dostaw* dostarcz* paczk* kurier* poczt* nadan*",
        "abroad": "zagranic* granic* kraj* europ* ue uk usa ameryk* kanad* norweg* szwajcar* "
        "wielk* brytani* niemiec* austri* francj* czech* wegier* szwecj* polsk*",
        "cost": "koszt* cen* kosztuje zaplac* doplac* doplat* oplat* darmow* gratis bezplat* "
        "drog* tani tania tanio euro eur zl zlotych",
        "time": "ile_trwa trwa jak_dlugo dlugo kiedy dni dzien dnia tydz* tygod* szybk* czas* "
        "termin* dotrz* dojd* dochodz* przyjdz* dzis dzisiaj jutro robocz*",
        "return": "zwrot* zwroc* odesl* odsyl* oddac odstapi* odstapien*",
        "warranty": "gwaranc* rekojm* reklamac* uszkodz* zepsu* napraw* wad*",
        "pay": "plac* platn* zaplac* karta kart* visa mastercard paypal klarna blik apple_pay "
        "google_pay przelew* gotowk* pobran*",
        "instalment": "rat raty rata ratach ratami ratal* czesciami miesiecz* co_miesiac finansow* "
        "splat* splac*",
        "invoice": "faktur* vat nip firm* dzialalnosc* paragon* rachun* podatk*",
        "discount": "rabat* znizk* kod kodu kodem kupon* promocj* promo newsletter* "
        "powitaln* procent*",
        "gift": "prezent* upomin* bon bonu bony bonem voucher* podarunk* urodzin*",
        "track": "sledz* sledzen* status* numer_przesylki tracking",
        "cancel": "anul* rezygn* wycofa* odwola* pomylk* cofnac cofnij",
        "pickup": "odbior* odebrac* odbiore salon* stacjonarn* osobisc* obejrz* przetest* "
        "showroom* na_zywo",
        "parts": "zamienn* czesci uszczel* akcesori* filtr*",
        "hours": "pracuj* od_ktorej do_ktorej rano wieczor* nocy noc godzin* otwar* czynne dostepn* sobot* niedziel* poniedzial* piat* weekend*",
        "privacy": "prywatn* dane danych rodo gdpr usun* serwer* przechow* cookie* osobow*",
        "subscription": "subskrypc* prenumerat* abonament* regularn* cykliczn* co_tydzien co_dwa",
        "compare": "porown* roznic* rozni* lepsz* ktory ktora ktore versus vs",
        "electric": "napiec* wolt* wtycz* gniazd* prad* adapter* zasilan*",
        "capacity": "pojemnik* pojemn* litr* zbiornik* miesci* rozmiar* wymiar*",
        "cheaper": "taniej tansz* nizsz* wyrown* konkurencj* gdzie_indziej najtansz* najnizsz*",
        "clean": "czyszcz* odkamien* kamien* konserwac* wyczysc*",
        "account": "konto konta koncie kontem zaloguj* logow* haslo hasla rejestr*",
        "stock": "magazyn* wyprzedan*",
    },
}
