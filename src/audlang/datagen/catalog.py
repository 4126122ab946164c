"""Reference data of the synthetic warehouse: places, stores, products, names.

Plain tuples, no behaviour. Postal-code centroids are approximate (within a
kilometre or two), which is all "latitude/longitude near the city" needs.
"""

from __future__ import annotations

# city, state, telephone area code, share of customers, home stores (store_id, share),
# postal codes (postal, latitude, longitude, share within the city).
CITIES: tuple[
    tuple[str, str, str, float, tuple[tuple[str, float], ...], tuple[tuple[str, float, float, float], ...]], ...
] = (
    ("Portland", "OR", "503", 14.0, (("PDX-01", 0.6), ("PDX-02", 0.4)), (
        ("97201", 45.5075, -122.6905, 1.2), ("97202", 45.4825, -122.6437, 1.3),
        ("97205", 45.5203, -122.6893, 1.0), ("97209", 45.5310, -122.6838, 1.4),
        ("97210", 45.5446, -122.7278, 0.9), ("97211", 45.5650, -122.6450, 1.0),
        ("97214", 45.5143, -122.6433, 1.1), ("97217", 45.5864, -122.6875, 0.8),
        ("97232", 45.5290, -122.6440, 0.7), ("97239", 45.4925, -122.6935, 0.6),
    )),
    ("Seattle", "WA", "206", 12.0, (("SEA-01", 0.55), ("SEA-02", 0.45)), (
        ("98101", 47.6114, -122.3330, 1.1), ("98102", 47.6360, -122.3210, 1.0),
        ("98104", 47.6020, -122.3270, 0.8), ("98122", 47.6110, -122.3050, 1.2),
        ("98103", 47.6733, -122.3420, 1.3), ("98105", 47.6633, -122.3016, 1.0),
        ("98107", 47.6680, -122.3770, 0.9), ("98109", 47.6310, -122.3480, 0.8),
        ("98115", 47.6850, -122.2990, 1.1),
    )),
    ("San Francisco", "CA", "415", 9.0, (("SFO-01", 1.0),), (
        ("94102", 37.7793, -122.4193, 1.0), ("94103", 37.7725, -122.4147, 1.0),
        ("94107", 37.7621, -122.3971, 0.9), ("94109", 37.7917, -122.4186, 1.2),
        ("94110", 37.7486, -122.4184, 1.3), ("94114", 37.7587, -122.4330, 0.9),
        ("94117", 37.7700, -122.4460, 0.9), ("94122", 37.7588, -122.4850, 1.0),
    )),
    ("Los Angeles", "CA", "323", 11.0, (("LAX-01", 1.0),), (
        ("90004", 34.0762, -118.3090, 1.0), ("90012", 34.0614, -118.2385, 0.8),
        ("90026", 34.0766, -118.2646, 1.1), ("90027", 34.1047, -118.2925, 1.0),
        ("90028", 34.0998, -118.3267, 0.9), ("90036", 34.0699, -118.3492, 1.1),
        ("90046", 34.1071, -118.3650, 1.0), ("90064", 34.0375, -118.4253, 0.8),
    )),
    ("New York", "NY", "212", 13.0, (("NYC-01", 1.0),), (
        ("10001", 40.7506, -73.9972, 1.0), ("10002", 40.7157, -73.9863, 1.2),
        ("10003", 40.7318, -73.9891, 1.1), ("10009", 40.7262, -73.9796, 1.0),
        ("10011", 40.7418, -74.0002, 1.0), ("10012", 40.7256, -73.9983, 0.8),
        ("10014", 40.7340, -74.0054, 0.9), ("10025", 40.7985, -73.9684, 1.2),
    )),
    ("Chicago", "IL", "312", 9.0, (("CHI-01", 1.0),), (
        ("60601", 41.8858, -87.6181, 0.8), ("60605", 41.8676, -87.6173, 0.9),
        ("60607", 41.8721, -87.6578, 0.9), ("60610", 41.9033, -87.6336, 1.0),
        ("60611", 41.8971, -87.6223, 1.0), ("60614", 41.9229, -87.6483, 1.3),
        ("60622", 41.9018, -87.6770, 1.1), ("60647", 41.9207, -87.7017, 1.1),
    )),
    ("Austin", "TX", "512", 7.0, (("AUS-01", 1.0),), (
        ("78701", 30.2713, -97.7426, 0.8), ("78702", 30.2635, -97.7160, 1.0),
        ("78703", 30.2940, -97.7645, 0.9), ("78704", 30.2430, -97.7657, 1.3),
        ("78705", 30.2960, -97.7400, 1.0), ("78723", 30.3050, -97.6850, 0.9),
        ("78741", 30.2310, -97.7220, 1.0), ("78745", 30.2070, -97.7960, 1.1),
    )),
    ("Beaverton", "OR", "503", 3.0, (("PDX-01", 1.0),), (
        ("97005", 45.4910, -122.8040, 1.0), ("97006", 45.5170, -122.8590, 1.0),
    )),
    ("Vancouver", "WA", "360", 2.0, (("PDX-01", 1.0),), (
        ("98660", 45.6410, -122.6870, 1.0), ("98661", 45.6400, -122.6250, 1.0),
    )),
    ("Denver", "CO", "303", 5.0, (), (
        ("80202", 39.7530, -104.9990, 1.0), ("80205", 39.7590, -104.9660, 1.0),
        ("80206", 39.7310, -104.9530, 1.0), ("80218", 39.7330, -104.9710, 1.0),
    )),
    ("Boston", "MA", "617", 5.0, (), (
        ("02108", 42.3576, -71.0684, 0.8), ("02116", 42.3493, -71.0760, 1.1),
        ("02118", 42.3364, -71.0729, 1.0), ("02215", 42.3471, -71.1025, 1.1),
    )),
    ("Miami", "FL", "305", 5.0, (), (
        ("33125", 25.7830, -80.2340, 1.0), ("33130", 25.7670, -80.2050, 1.0),
        ("33131", 25.7630, -80.1890, 1.0), ("33137", 25.8150, -80.1880, 1.0),
    )),
    ("Atlanta", "GA", "404", 5.0, (), (
        ("30303", 33.7525, -84.3888, 0.9), ("30308", 33.7710, -84.3760, 1.0),
        ("30309", 33.7980, -84.3880, 1.1), ("30318", 33.7900, -84.4450, 1.0),
    )),
)

# store_id, name, city, state, postal, latitude, longitude
STORES: tuple[tuple[str, str, str, str, str, float, float], ...] = (
    ("PDX-01", "Pearl District", "Portland", "OR", "97209", 45.5288, -122.6826),
    ("PDX-02", "Downtown Portland", "Portland", "OR", "97205", 45.5189, -122.6792),
    ("SEA-01", "Capitol Hill", "Seattle", "WA", "98122", 47.6145, -122.3130),
    ("SEA-02", "Downtown Seattle", "Seattle", "WA", "98101", 47.6097, -122.3380),
    ("SFO-01", "Union Square", "San Francisco", "CA", "94108", 37.7880, -122.4075),
    ("LAX-01", "The Grove", "Los Angeles", "CA", "90036", 34.0722, -118.3578),
    ("NYC-01", "SoHo", "New York", "NY", "10012", 40.7245, -73.9981),
    ("CHI-01", "Wicker Park", "Chicago", "IL", "60622", 41.9088, -87.6776),
    ("AUS-01", "South Congress", "Austin", "TX", "78704", 30.2480, -97.7500),
)

# Shopper profiles: a customer buys about half of their lines from their
# profile's products, the rest by overall popularity. (name, share of customers)
PROFILES: tuple[tuple[str, float], ...] = (
    ("runner", 0.20), ("fashion", 0.18), ("outdoor", 0.12), ("cat", 0.14),
    ("dog", 0.14), ("home", 0.12), ("gifter", 0.10),
)

# product_name, product_category, product_collection, product_brand, list price,
# popularity, profile. None is a NULL in the data (not every product is in a
# collection; the odd house item has no brand on file).
PRODUCTS: tuple[tuple[str, str, str | None, str | None, float, float, str], ...] = (
    # Shoes
    ("Air Zoom Pegasus 40", "Shoes", "Running", "Nike", 130.00, 3.0, "runner"),
    ("Revolution 7", "Shoes", "Running", "Nike", 70.00, 2.5, "runner"),
    ("Air Max 90", "Shoes", "Lifestyle", "Nike", 130.00, 2.5, "fashion"),
    ("Pegasus Trail 4", "Shoes", "Trail", "Nike", 140.00, 1.5, "outdoor"),
    ("Ultraboost Light", "Shoes", "Running", "Adidas", 190.00, 1.5, "runner"),
    ("Samba OG", "Shoes", "Lifestyle", "Adidas", 100.00, 2.0, "fashion"),
    ("Fresh Foam 1080", "Shoes", "Running", "New Balance", 165.00, 1.2, "runner"),
    ("574 Core", "Shoes", "Lifestyle", "New Balance", 90.00, 1.5, "fashion"),
    ("Clifton 9", "Shoes", "Running", "Hoka", 145.00, 1.5, "runner"),
    ("Speedgoat 5", "Shoes", "Trail", "Hoka", 155.00, 1.0, "outdoor"),
    ("Chuck Taylor All Star", "Shoes", "Lifestyle", "Converse", 65.00, 1.8, "fashion"),
    ("Classic Clog", "Shoes", None, "Crocs", 50.00, 1.2, "home"),
    ("Tree Runner", "Shoes", "Everyday Basics", "Allbirds", 98.00, 1.0, "fashion"),
    # Socks
    ("Socks", "Socks", "Everyday Basics", "Northwind", 9.00, 5.0, "runner"),
    ("Crew Socks 3-Pack", "Socks", "Everyday Basics", "Nike", 22.00, 3.0, "runner"),
    ("Everyday Cushioned Ankle Socks", "Socks", "Running", "Nike", 18.00, 2.5, "runner"),
    ("Merino Hiking Socks", "Socks", "Trail", "Smartwool", 24.00, 1.5, "outdoor"),
    ("Run Light Cushion Socks", "Socks", "Running", "Balega", 16.00, 1.2, "runner"),
    ("Holiday Wool Socks", "Socks", "Holiday Gifts", "Smartwool", 26.00, 1.0, "gifter"),
    ("Ankle Socks 4-Pack", "Socks", "Everyday Basics", "Bombas", 50.00, 1.2, "fashion"),
    # Accessories
    ("Brasilia Duffel Bag", "Accessories", None, "Nike", 45.00, 1.2, "runner"),
    ("Heritage Cap", "Accessories", "Lifestyle", "Nike", 28.00, 1.8, "fashion"),
    ("Running Belt", "Accessories", "Running", "FlipBelt", 30.00, 1.0, "runner"),
    ("Insulated Water Bottle 24oz", "Accessories", "Trail", "Hydro Flask", 40.00, 2.0, "outdoor"),
    ("Wool Beanie", "Accessories", "Holiday Gifts", "Patagonia", 39.00, 1.2, "gifter"),
    ("Leather Belt", "Accessories", None, None, 45.00, 0.8, "fashion"),
    ("Polarized Sunglasses", "Accessories", "Summer", "Goodr", 35.00, 1.0, "fashion"),
    ("Daypack 20L", "Accessories", "Trail", "Patagonia", 89.00, 1.0, "outdoor"),
    ("Touchscreen Gloves", "Accessories", "Holiday Gifts", "The North Face", 45.00, 0.8, "gifter"),
    # Apparel
    ("Dri-FIT Running Tee", "Apparel", "Running", "Nike", 35.00, 2.5, "runner"),
    ("Tech Fleece Hoodie", "Apparel", "Lifestyle", "Nike", 120.00, 1.5, "fashion"),
    ("Better Sweater Jacket", "Apparel", None, "Patagonia", 149.00, 1.0, "outdoor"),
    ("Nano Puff Jacket", "Apparel", "Holiday Gifts", "Patagonia", 239.00, 0.7, "outdoor"),
    ("Essential Leggings", "Apparel", "Everyday Basics", "Northwind", 45.00, 2.0, "fashion"),
    ("Organic Cotton Tee", "Apparel", "Everyday Basics", "Northwind", 22.00, 2.5, "fashion"),
    ("Rain Shell", "Apparel", "Trail", "The North Face", 129.00, 1.0, "outdoor"),
    ("Running Shorts", "Apparel", "Running", "Adidas", 40.00, 1.5, "runner"),
    # Pet supplies
    ("Tuna Crunchy Treats", "Pet Supplies", "Cat snacks", "Temptations", 6.00, 3.0, "cat"),
    ("Salmon Cat Treats", "Pet Supplies", "Cat snacks", "Greenies", 7.00, 2.0, "cat"),
    ("Chicken Lickable Cat Treats", "Pet Supplies", "Cat snacks", "Churu", 12.00, 2.0, "cat"),
    ("Freeze-Dried Chicken Bites", "Pet Supplies", "Cat snacks", "PureBites", 9.00, 1.2, "cat"),
    ("Indoor Cat Food 7lb", "Pet Supplies", "Cat food", "Purina", 22.00, 2.0, "cat"),
    ("Feather Wand Toy", "Pet Supplies", "Cat toys", None, 8.00, 1.0, "cat"),
    ("Dental Dog Treats", "Pet Supplies", "Dog treats", "Greenies", 18.00, 2.5, "dog"),
    ("Peanut Butter Biscuits", "Pet Supplies", "Dog treats", "Milk-Bone", 8.00, 2.0, "dog"),
    ("Beef Jerky Dog Treats", "Pet Supplies", "Dog treats", "Blue Buffalo", 14.00, 1.5, "dog"),
    ("Chew Sticks", "Pet Supplies", "Dog treats", "Northwind", 11.00, 1.2, "dog"),
    ("Adult Dog Food 15lb", "Pet Supplies", "Dog food", "Blue Buffalo", 45.00, 2.0, "dog"),
    ("Classic Kong", "Pet Supplies", "Dog toys", "Kong", 14.00, 1.2, "dog"),
    # Home
    ("Scented Candle", "Home", "Holiday Gifts", "Northwind", 24.00, 1.5, "home"),
    ("Throw Blanket", "Home", "Holiday Gifts", "Northwind", 59.00, 1.0, "home"),
    ("Ceramic Mug", "Home", "Kitchen", "Northwind", 16.00, 1.5, "home"),
    ("Stainless Steel Tumbler", "Home", "Kitchen", "Yeti", 38.00, 1.5, "outdoor"),
    ("French Press", "Home", "Kitchen", "Bodum", 35.00, 1.0, "home"),
    # Beauty
    ("Lip Balm", "Beauty", None, "Burt's Bees", 5.00, 2.0, "gifter"),
    ("Hand Cream", "Beauty", "Holiday Gifts", "L'Occitane", 30.00, 1.0, "gifter"),
    ("Sunscreen SPF 50", "Beauty", "Summer", "Supergoop!", 34.00, 1.0, "outdoor"),
    # Gifts
    ("Chocolate Truffle Box", "Gifts", "Valentine's Day", "Godiva", 30.00, 0.8, "gifter"),
    ("Red Rose Bouquet", "Gifts", "Valentine's Day", None, 55.00, 0.5, "gifter"),
    ("Gift Card", "Gifts", None, "Northwind", 50.00, 1.0, "gifter"),
)

# Collections that sell out of season: at these times a share of lines is drawn
# from them instead. (collection, month, first day, last day, share of lines)
SEASONAL_COLLECTIONS: tuple[tuple[str, int, int, int, float], ...] = (
    ("Valentine's Day", 2, 1, 14, 0.30),
    ("Holiday Gifts", 11, 15, 30, 0.20),
    ("Holiday Gifts", 12, 1, 24, 0.30),
    ("Summer", 6, 1, 30, 0.10),
    ("Summer", 7, 1, 31, 0.10),
)

GIVEN_NAMES_FEMALE: tuple[str, ...] = (
    "Olivia", "Emma", "Ava", "Sophia", "Isabella", "Mia", "Amelia", "Harper", "Evelyn", "Abigail",
    "Emily", "Ella", "Elizabeth", "Camila", "Luna", "Sofia", "Avery", "Mila", "Aria", "Scarlett",
    "Maria", "Grace", "Chloe", "Priya", "Mei", "Yuki", "Fatima", "Aisha", "Lucia", "Hannah",
    "Nora", "Zoe", "Jennifer", "Linda", "Patricia", "Susan", "Karen", "Nancy", "Laura", "Rachel",
)
GIVEN_NAMES_MALE: tuple[str, ...] = (
    "Liam", "Noah", "Oliver", "James", "Elijah", "William", "Henry", "Lucas", "Benjamin", "Theodore",
    "Mateo", "Levi", "Sebastian", "Daniel", "Jack", "Michael", "Alexander", "Owen", "Asher", "Samuel",
    "Ethan", "Leo", "Jackson", "Raj", "Wei", "Hiroshi", "Omar", "Diego", "Carlos", "David",
    "John", "Robert", "Thomas", "Joseph", "Charles", "Christopher", "Mark", "Paul", "Kevin", "Brian",
)
SURNAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
    "Kim", "Patel", "Chen", "Wang", "Tanaka", "Singh", "O'Brien", "Murphy", "Cohen", "Schmidt",
)
# (domain, share)
EMAIL_DOMAINS: tuple[tuple[str, float], ...] = (
    ("gmail.com", 0.42), ("yahoo.com", 0.14), ("outlook.com", 0.10), ("hotmail.com", 0.08),
    ("icloud.com", 0.12), ("aol.com", 0.03), ("comcast.net", 0.04), ("proton.me", 0.02),
    ("example.org", 0.05),
)

LIFECYCLE_STATUSES: tuple[str, ...] = ("Active", "Cooling down", "At risk", "Highly at risk", "Lost", "New")
LOYALTY_TIERS: tuple[str, ...] = ("Bronze", "Silver", "Gold", "Platinum")
CHANNELS: tuple[str, ...] = ("online", "store", "app")
CHURN_MODEL_VERSIONS: tuple[str, ...] = ("churn-xgb-2024.11", "churn-xgb-2024.10")
